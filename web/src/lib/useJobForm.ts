// The state every job-starting form shares: its text fields, the request
// in flight, and the server's refusal placed on the field it names (or
// shown whole when it names none).

import { useState, type FormEvent } from 'react';
import { asProblem, fieldOfProblem, type Problem } from '../api/problem';
import type { Job } from '../api/types';

export function useJobForm<F extends Record<string, string>, K extends string>(
  initial: F,
  fields: Record<K, readonly string[]>,
  start: (form: F) => Promise<Job>,
  onStarted: (job: Job) => void,
) {
  const [form, setForm] = useState(initial);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);
  const field = problem ? fieldOfProblem(problem.detail, fields) : null;
  const errorFor = (name: K) => (field === name ? problem : null);
  const set = (k: keyof F) => (e: { target: { value: string } }) => setForm((f) => ({ ...f, [k]: e.target.value }));
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setProblem(null);
    try {
      onStarted(await start(form));
    } catch (err) {
      setProblem(asProblem(err));
    } finally {
      setBusy(false);
    }
  };
  return { form, set, submit, busy, problem, field, errorFor };
}
