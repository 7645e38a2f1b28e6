// Collections read at once share one snapshot: a snapshot session settles on its time with the
// reply to its first read, so the other cursors may only open once that reply has arrived.
import { FirstReply } from '../../src/modes/backup.js';

function source(name: string, events: string[], docs: number, release?: Promise<void>): AsyncIterable<Buffer> {
  return (async function* () {
    events.push(`${name} opened`);
    if (release) await release;
    events.push(`${name} first reply`);
    for (let i = 0; i < docs; i++) yield Buffer.from([i]);
  })();
}

async function drain(it: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const _ of it) n++;
  return n;
}

test('the first cursor opens alone; the others open after its first reply, then all read at once', async () => {
  const events: string[] = [];
  let reply!: () => void;
  const replied = new Promise<void>((resolve) => (reply = resolve));
  const gate = new FirstReply();
  const first = drain(gate.gate(source('a', events, 3, replied)));
  const others = [drain(gate.gate(source('b', events, 2))), drain(gate.gate(source('c', events, 0)))];
  await new Promise((resolve) => setImmediate(resolve));
  expect(events).toEqual(['a opened']);
  reply();
  expect(await Promise.all([first, ...others])).toEqual([3, 2, 0]);
  expect(events.slice(0, 2)).toEqual(['a opened', 'a first reply']);
});

test('a first read that fails still lets the others go (the run then stops on that failure)', async () => {
  const gate = new FirstReply();
  const failing = gate.gate(
    (async function* () {
      yield* [];
      throw new Error('first read failed');
    })(),
  );
  const other = gate.gate(source('b', [], 1));
  await expect(drain(failing)).rejects.toThrow('first read failed');
  expect(await drain(other)).toBe(1);
});
