import type { Problem } from '../api/problem';

/** A problem document as the user reads it: the server's detail first. */
export function ProblemMessage({ problem, id }: { problem: Problem | null | undefined; id?: string }) {
  if (!problem) return null;
  const title = problem.title || (problem.status ? `Error ${problem.status}` : 'Error');
  return (
    <div className="problem" role="alert" id={id} data-testid="problem">
      <strong>{title}</strong>
      {problem.detail && problem.detail !== title ? <span>: {problem.detail}</span> : null}
    </div>
  );
}

/** The error under one form field, tied to it with aria-describedby. */
export function FieldError({ id, problem }: { id: string; problem: Problem | null }) {
  if (!problem) return null;
  return (
    <p className="field-error" id={id} role="alert" data-testid={`${id}`}>
      {problem.detail || problem.title}
    </p>
  );
}
