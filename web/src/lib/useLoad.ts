// Loads data for a page: `data`, `problem` on failure, `reload()`, and an
// optional polling interval (paused while the tab is hidden).

import { useCallback, useEffect, useRef, useState } from 'react';
import { asProblem, type Problem } from '../api/problem';

export interface Loaded<T> {
  data: T | undefined;
  problem: Problem | null;
  loading: boolean;
  reload: () => void;
}

export function useLoad<T>(load: () => Promise<T>, deps: unknown[], opts: { intervalMs?: number | null } = {}): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loader = useRef(load);
  loader.current = load;

  useEffect(() => {
    let cancelled = false;
    setLoading(true);
    loader
      .current()
      .then((d) => {
        if (cancelled) return;
        setData(d);
        setProblem(null);
      })
      .catch((e) => !cancelled && setProblem(asProblem(e)))
      .finally(() => !cancelled && setLoading(false));
    return () => {
      cancelled = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);

  const interval = opts.intervalMs;
  useEffect(() => {
    if (!interval) return;
    const t = setInterval(() => {
      if (document.visibilityState !== 'hidden') setTick((n) => n + 1);
    }, interval);
    return () => clearInterval(t);
  }, [interval]);

  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { data, problem, loading, reload };
}
