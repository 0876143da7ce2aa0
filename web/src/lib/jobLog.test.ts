import { describe, expect, it } from 'vitest';
import type { LogLine } from '../api/types';
import { appendPage, emptyLog, logText } from './jobLog';

const line = (seq: number, stream = 'stdout', text = `line ${seq}`): LogLine => ({ seq, attempt: 1, at_ms: seq, stream, line: text });

describe('following a job log', () => {
  it('appends pages in order and skips lines a retried request brings again', () => {
    let s = appendPage(emptyLog, { status: 'running', lines: [line(1), line(2)], next_after: 2 }, 2);
    expect(s.after).toBe(2);
    expect(s.complete).toBe(false);
    s = appendPage(s, { status: 'running', lines: [line(2), line(3)], next_after: 3 }, 2);
    expect(s.lines.map((l) => l.seq)).toEqual([1, 2, 3]);
  });

  it('is complete only once the job has ended and a page came back short', () => {
    let s = appendPage(emptyLog, { status: 'finished', lines: [line(1), line(2)], next_after: 2 }, 2);
    expect(s.complete).toBe(false);
    s = appendPage(s, { status: 'finished', lines: [], next_after: 2 }, 2);
    expect(s.complete).toBe(true);
    expect(appendPage(emptyLog, { status: 'running', lines: [], next_after: 0 }).complete).toBe(false);
  });

  it('writes the log as text, naming the streams other than the output', () => {
    expect(logText([line(1, 'worker', 'attempt 1'), line(2), line(3, 'stderr', 'warning: x')])).toBe('[worker] attempt 1\nline 2\n[stderr] warning: x\n');
    expect(logText([])).toBe('');
  });
});
