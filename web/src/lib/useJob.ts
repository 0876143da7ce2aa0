// Follows one job over its server-sent event stream: each `job` event is
// the whole job; `end` is the last.

import { useEffect, useState } from 'react';
import { followEvents } from '../api/client';
import { asProblem, type Problem } from '../api/problem';
import type { Job } from '../api/types';

export function useJobEvents(id: string | null, initial?: Job | null): { job: Job | null; ended: boolean; problem: Problem | null; events: number } {
  const [job, setJob] = useState<Job | null>(initial ?? null);
  const [ended, setEnded] = useState(false);
  const [events, setEvents] = useState(0);
  const [problem, setProblem] = useState<Problem | null>(null);
  useEffect(() => {
    if (!id) return;
    const ctl = new AbortController();
    setEnded(false);
    setProblem(null);
    followEvents(
      `/v1/jobs/${encodeURIComponent(id)}/events`,
      (e) => {
        if (e.event === 'job' || e.event === 'end') {
          try {
            setJob(JSON.parse(e.data) as Job);
            setEvents((n) => n + 1);
          } catch {
            /* a malformed event: keep the last good one */
          }
          if (e.event === 'end') setEnded(true);
        } else if (e.event === 'error') {
          setProblem({ title: 'Event stream', status: 0, detail: e.data });
        }
      },
      ctl.signal,
    ).catch((err) => {
      if (!ctl.signal.aborted) setProblem(asProblem(err));
    });
    return () => ctl.abort();
  }, [id]);
  return { job, ended, problem, events };
}
