import { describe, expect, it } from 'vitest';
import { readEvents, SseParser } from './sse';

describe('SseParser', () => {
  it('parses named events with JSON data and ids', () => {
    const p = new SseParser();
    const out = p.feed('event: job\ndata: {"id":"a","status":"running"}\n\nevent: end\nid: 7\ndata: {"id":"a"}\n\n');
    expect(out).toEqual([
      { event: 'job', data: '{"id":"a","status":"running"}' },
      { event: 'end', data: '{"id":"a"}', id: '7' },
    ]);
  });

  it('joins multi-line data, defaults the type to message, ignores comments', () => {
    const p = new SseParser();
    expect(p.feed(': keep-alive\n\ndata: one\ndata:two\n\n')).toEqual([{ event: 'message', data: 'one\ntwo' }]);
  });

  it('handles chunks cut anywhere, including inside a CRLF pair', () => {
    const text = 'event: job\r\ndata: {"a":1}\r\n\r\nevent: end\r\ndata: x\r\n\r\n';
    for (let cut = 1; cut < text.length; cut++) {
      const p = new SseParser();
      const got = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut))];
      expect(got, `cut at ${cut}`).toEqual([
        { event: 'job', data: '{"a":1}' },
        { event: 'end', data: 'x' },
      ]);
    }
  });

  it('accepts bare CR line ends and a leading BOM', () => {
    const p = new SseParser();
    expect(p.feed('\ufeffevent: denied\rdata: expired\r\r')).toEqual([{ event: 'denied', data: 'expired' }]);
  });

  it('does not dispatch an event without data, and resets the type after each event', () => {
    const p = new SseParser();
    expect(p.feed('event: lonely\n\ndata: plain\n\n')).toEqual([{ event: 'message', data: 'plain' }]);
  });

  it('keeps only one leading space of a value and reads retry', () => {
    const p = new SseParser();
    expect(p.feed('retry: 3000\ndata:  two spaces\n\n')).toEqual([{ event: 'message', data: ' two spaces', retry: 3000 }]);
  });
});

describe('readEvents', () => {
  it('reads a streamed body and drops an unterminated last event', async () => {
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode('event: job\nda'));
        c.enqueue(enc.encode('ta: 1\n\nevent: job\ndata: 2\n\n'));
        c.enqueue(enc.encode('event: end\ndata: 3\n'));
        c.close();
      },
    });
    const got: string[] = [];
    await readEvents(new Response(body), (e) => got.push(`${e.event}:${e.data}`));
    expect(got).toEqual(['job:1', 'job:2']);
  });
});
