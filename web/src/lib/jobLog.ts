// Following a job's log: pages of lines are appended in order, and the
// reader stops once the job has ended and a page comes back short (the
// worker stores every line before it marks the job ended).

import { useEffect, useState } from 'react';
import { api, must } from '../api/client';
import { asProblem, type Problem } from '../api/problem';
import type { JobLogPage, LogLine } from '../api/types';
import { TERMINAL_JOB } from './format';

export const LOG_PAGE = 1000;

export interface LogState {
  lines: LogLine[];
  after: number;
  status: string | null;
  complete: boolean;
}

export const emptyLog: LogState = { lines: [], after: 0, status: null, complete: false };

/** The state after reading `page` (asked for with `after: state.after`). */
export function appendPage(state: LogState, page: JobLogPage, limit = LOG_PAGE): LogState {
  // A page that overlaps what we have (a retried request) adds only what is new.
  const fresh = page.lines.filter((l) => l.seq > state.after);
  return {
    lines: fresh.length ? [...state.lines, ...fresh] : state.lines,
    after: Math.max(state.after, page.next_after),
    status: page.status,
    complete: TERMINAL_JOB.has(page.status) && page.lines.length < limit,
  };
}

/** The log as plain text, one line each, with its stream where it is not the output. */
export function logText(lines: readonly LogLine[]): string {
  return lines.map((l) => (l.stream === 'stdout' ? l.line : `[${l.stream}] ${l.line}`)).join('\n') + (lines.length ? '\n' : '');
}

/** Follows job `id`'s log: reads pages back to back, then every `intervalMs` while the job runs. */
export function useJobLog(id: string, intervalMs = 1500): LogState & { problem: Problem | null } {
  const [state, setState] = useState<LogState>(emptyLog);
  const [problem, setProblem] = useState<Problem | null>(null);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let current = emptyLog;
    setState(emptyLog);
    setProblem(null);
    const read = async () => {
      try {
        const page = must(
          await api.GET('/v1/jobs/{id}/logs', { params: { path: { id }, query: { after: current.after, limit: LOG_PAGE } } }),
        ) as JobLogPage;
        if (stopped) return;
        current = appendPage(current, page);
        setState(current);
        setProblem(null);
        if (current.complete) return;
        // A full page: more is waiting now.
        timer = setTimeout(read, page.lines.length >= LOG_PAGE ? 0 : intervalMs);
      } catch (e) {
        if (stopped) return;
        setProblem(asProblem(e));
        timer = setTimeout(read, intervalMs * 4);
      }
    };
    void read();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [id, intervalMs]);
  return { ...state, problem };
}
