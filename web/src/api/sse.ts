// A `text/event-stream` reader for fetch responses. EventSource cannot send
// an Authorization header, so the dashboard reads the stream itself.

export interface SseEvent {
  /** `message` when the stream names no event type. */
  event: string;
  data: string;
  id?: string;
  retry?: number;
}

/**
 * Incremental parser (WHATWG HTML §9.2.6): feed it text as it arrives, in
 * chunks cut anywhere, and it returns the events completed so far.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private eventType = '';
  private lastId: string | undefined;
  private retry: number | undefined;
  private sawBom = false;
  /** A chunk ended in `\r`: a `\n` starting the next one is the same break. */
  private pendingCr = false;

  feed(chunk: string): SseEvent[] {
    if (!this.sawBom) {
      if (chunk.length === 0) return [];
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
      this.sawBom = true;
    }
    if (this.pendingCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.pendingCr = false;
    this.buffer += chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      const line = this.buffer.slice(start, i);
      if (c === '\r') {
        if (i + 1 === this.buffer.length) this.pendingCr = true;
        else if (this.buffer[i + 1] === '\n') i++;
      }
      start = i + 1;
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  private line(line: string): SseEvent | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
    return null;
  }

  private dispatch(): SseEvent | null {
    const hadData = this.data.length > 0;
    const ev: SseEvent = {
      event: this.eventType || 'message',
      data: this.data.join('\n'),
      ...(this.lastId !== undefined ? { id: this.lastId } : {}),
      ...(this.retry !== undefined ? { retry: this.retry } : {}),
    };
    this.data = [];
    this.eventType = '';
    this.retry = undefined;
    return hadData ? ev : null;
  }
}

/** Reads a response body as events until it ends or `signal` aborts. */
export async function readEvents(
  response: Response,
  onEvent: (e: SseEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  if (!response.body) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  const abort = () => void reader.cancel().catch(() => {});
  signal?.addEventListener('abort', abort);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const e of parser.feed(decoder.decode(value, { stream: true }))) onEvent(e);
    }
    // An event not closed by a blank line at the end is dropped (spec).
    for (const e of parser.feed(decoder.decode())) onEvent(e);
  } finally {
    signal?.removeEventListener('abort', abort);
  }
}
