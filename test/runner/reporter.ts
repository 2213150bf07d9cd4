// A node:test reporter that writes one JSON line per finished test (name, nesting, outcome, skip reason, the
// enclosing Docker test's engine label), for test/run.js's summary per engine and its skip policy. Used beside
// the spec reporter: `--test-reporter=<this file> --test-reporter-destination=<file>`.

import type { Outcome } from './summary';

interface Event {
  type: string;
  data: {
    name?: string;
    nesting?: number;
    skip?: string | boolean;
    todo?: string | boolean;
    file?: string;
    details?: { type?: string; duration_ms?: number };
  };
}

const ENGINE_NAME = /^\[(docker [^\]]+)\] /;

async function* reporter(source: AsyncIterable<Event>): AsyncGenerator<string> {
  const stack: string[] = [];
  for await (const ev of source) {
    const d = ev.data;
    if (ev.type === 'test:start' && d.name !== undefined) {
      stack.length = d.nesting ?? 0;
      stack.push(d.name);
      continue;
    }
    if (ev.type !== 'test:pass' && ev.type !== 'test:fail') continue;
    if (d.details?.type === 'suite' || d.name === undefined) continue;
    const nesting = d.nesting ?? 0;
    const path = [...stack.slice(0, nesting), d.name];
    const engine = path
      .map((n) => ENGINE_NAME.exec(n)?.[1])
      .filter(Boolean)
      .pop();
    const reason = (v: string | boolean | undefined) => (typeof v === 'string' ? v : '');
    const outcome: Outcome = {
      name: d.name,
      nesting,
      outcome:
        ev.type === 'test:fail' ? 'fail' : d.skip !== undefined ? 'skip' : d.todo !== undefined ? 'todo' : 'pass',
      ...(engine && { engine }),
      ...(d.skip !== undefined && { reason: reason(d.skip) }),
      ...(d.todo !== undefined && { reason: reason(d.todo) }),
      ...(d.file && { file: d.file }),
      ...(d.details?.duration_ms !== undefined && { durationMs: Math.round(d.details.duration_ms) }),
    };
    yield `${JSON.stringify(outcome)}\n`;
  }
}

export = reporter;
