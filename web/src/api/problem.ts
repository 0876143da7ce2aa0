// RFC 7807 problem documents: every error the API answers is one of these.
// OAuth endpoints answer RFC 6749 `{error, error_description}` instead;
// both end up as an ApiError so screens show one kind of message.

export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail: string;
}

export class ApiError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail || problem.title);
    this.name = 'ApiError';
    this.problem = problem;
  }
  get status(): number {
    return this.problem.status;
  }
}

/** Reads a problem out of any error body the server may send. */
export function toProblem(body: unknown, status: number, statusText = ''): Problem {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (typeof b.detail === 'string' || typeof b.title === 'string') {
      return {
        type: typeof b.type === 'string' ? b.type : undefined,
        title: typeof b.title === 'string' ? b.title : statusText || `HTTP ${status}`,
        status: typeof b.status === 'number' ? b.status : status,
        detail: typeof b.detail === 'string' ? b.detail : '',
      };
    }
    if (typeof b.error === 'string') {
      return {
        title: b.error,
        status,
        detail: typeof b.error_description === 'string' ? b.error_description : b.error,
      };
    }
  }
  const text = typeof body === 'string' ? body.trim() : '';
  return { title: statusText || `HTTP ${status}`, status, detail: text.slice(0, 500) };
}

/** An ApiError from a failed fetch Response (reads its body). */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    const text = await res.text();
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  } catch {
    /* body unreadable: the status alone */
  }
  return new ApiError(toProblem(body, res.status, res.statusText));
}

/** Any thrown thing as a problem, for display. */
export function asProblem(e: unknown): Problem {
  if (e instanceof ApiError) return e.problem;
  if (e && typeof e === 'object' && 'status' in e && ('detail' in e || 'title' in e)) {
    return toProblem(e, Number((e as { status: unknown }).status) || 0);
  }
  const message = e instanceof Error ? e.message : String(e);
  return { title: 'Error', status: 0, detail: message };
}

/**
 * Which form field a problem's detail names, if any. The server words its
 * refusals as "symbol `x` is not a plain name", "unknown strategy `y`",
 * "steps must be at least 1", or serde's "...: steps: invalid type"; the
 * field whose keyword appears first wins.
 */
export function fieldOfProblem(
  detail: string,
  fields: Record<string, readonly string[]>,
): string | null {
  const lower = detail.toLowerCase();
  let best: { field: string; at: number } | null = null;
  for (const [field, keywords] of Object.entries(fields)) {
    for (const k of keywords) {
      const re = new RegExp(`(^|[^a-z_])${k.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
      const m = re.exec(lower);
      if (m) {
        const at = m.index + m[1].length;
        if (!best || at < best.at) best = { field, at };
      }
    }
  }
  return best?.field ?? null;
}
