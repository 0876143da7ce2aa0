import { api, must } from '../api/client';
import { AGENTS, type Job, type TrainJob } from '../api/types';
import { splitLines, splitList } from '../lib/forms';
import { useJobForm } from '../lib/useJobForm';
import { Field } from './Field';
import { ProblemMessage } from './ProblemMessage';

export const TRAIN_FIELDS = {
  agent: ['agent'],
  symbols: ['symbols', 'symbol'],
  steps: ['steps'],
  seed: ['seed'],
  name: ['name'],
  settings: ['setting', 'settings'],
} as const;

export function trainBody(f: { agent: string; symbols: string; steps: string; seed: string; name: string; overrides: string }): TrainJob {
  const int = (v: string) => (v.trim() === '' ? undefined : Number(v));
  const body: TrainJob = { agent: f.agent, symbols: splitList(f.symbols), settings: splitLines(f.overrides) };
  const steps = int(f.steps);
  const seed = int(f.seed);
  if (steps !== undefined) body.steps = steps;
  if (seed !== undefined) body.seed = seed;
  if (f.name.trim()) body.name = f.name.trim();
  return body;
}

export function TrainForm({ onStarted }: { onStarted: (job: Job) => void }) {
  const { form, set, submit, busy, problem, field, errorFor } = useJobForm(
    { agent: 'logreg', symbols: '', steps: '', seed: '', name: '', overrides: '' },
    TRAIN_FIELDS,
    async (f) => must(await api.POST('/v1/training-jobs', { body: trainBody(f) })) as Job,
    onStarted,
  );
  return (
    <form onSubmit={submit} aria-label="Train a model" data-testid="train-form" noValidate>
      <div className="form-grid">
        <Field id="tr-agent" label="Agent" error={errorFor('agent')}>
          {(a) => (
            <select {...a} value={form.agent} onChange={set('agent')}>
              {AGENTS.map((x) => (
                <option key={x}>{x}</option>
              ))}
            </select>
          )}
        </Field>
        <Field id="tr-symbols" label="Symbols" hint="Prepared instruments, separated by commas; empty for all" error={errorFor('symbols')}>
          {(a) => <input {...a} value={form.symbols} onChange={set('symbols')} autoComplete="off" />}
        </Field>
        <Field id="tr-steps" label="Steps" hint="Environment steps (empty: the settings' total)" error={errorFor('steps')}>
          {(a) => <input {...a} type="number" min="1" step="1" inputMode="numeric" value={form.steps} onChange={set('steps')} />}
        </Field>
        <Field id="tr-seed" label="Seed" error={errorFor('seed')}>
          {(a) => <input {...a} type="number" min="0" step="1" inputMode="numeric" value={form.seed} onChange={set('seed')} />}
        </Field>
        <Field id="tr-name" label="Registry name" hint="Default: the agent's name" error={errorFor('name')}>
          {(a) => <input {...a} value={form.name} onChange={set('name')} autoComplete="off" />}
        </Field>
        <Field id="tr-settings" label="Settings overrides" hint="One key.path=value per line" error={errorFor('settings')}>
          {(a) => <textarea {...a} rows={2} value={form.overrides} onChange={set('overrides')} spellCheck={false} />}
        </Field>
      </div>
      {problem && !field ? <ProblemMessage problem={problem} /> : null}
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Starting…' : 'Start training'}
      </button>
    </form>
  );
}
