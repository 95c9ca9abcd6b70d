// Issue 5.4: a serve that resets connections, answers slowly, answers
// garbage, cuts the WebSocket mid-frame and floods events. The bridge (a
// child process, so its memory can be read) stays up, its memory stays
// bounded, and every mission ends where its events say.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFakeServe } from './helpers/lifecycle-serve.mjs';
import { scope, waitFor, within } from './helpers/waiting.mjs';
import { spawnBridge } from './helpers/bridge-process.mjs';

const MISSIONS = 40;
const EX = 'ex-faulty';
/** Progress events in the flood, about 8 KB each: far more than the memory bound below. */
const FLOOD = 300_000;
const PADDING = 'x'.repeat(8000);
/** Peak resident memory the bridge may reach, flood included. */
const RSS_BOUND_MB = 150;

const rssMb = (pid) => {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
};

/** Write raw bytes of a text frame that claims 1000 bytes, send 10 of them, and cut the socket. */
function cutMidFrame(ws) {
  const socket = ws._socket;
  socket.write(Buffer.from([0x81, 126, 0x03, 0xe8]));
  socket.write(Buffer.from('{"event":"'));
  socket.destroy();
}

describe('a hostile network (issue 5.4)', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  it('resets, timeouts, garbage answers, a WebSocket cut mid-frame and an 800 MB event flood: nothing lost, memory bounded', async (t) => {
    const s = scope(t);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mc-faults-'));
    s.defer(() => fs.promises.rm(root, { recursive: true, force: true }));
    const file = path.join(root, 'sessions', 'faults', 'session.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const ids = Array.from({ length: MISSIONS }, (_, i) => `m-${(1_700_000_000_000 + i).toString(36)}-f${i}`);
    fs.writeFileSync(file, JSON.stringify({ id: 'faults', missions: ids.map((id) => ({ id, objective: id, status: 'queued' })) }, null, 2));

    // Per mission: a reset, then an answer slower than requestTimeoutMs,
    // then a proxy's HTML error page, then the 202.
    const attempts = new Map();
    const serve = await startFakeServe({
      executorFor: () => EX,
      dispatchAnswer: ({ missionId }) => {
        const n = (attempts.get(missionId) ?? 0) + 1;
        attempts.set(missionId, n);
        if (n === 1) return { reset: true };
        if (n === 2) return { delayMs: 3_000, status: 202, body: { executor_id: EX } };
        if (n === 3) return { status: 502, raw: '<html><body>Bad Gateway</body></html>' };
        return undefined;
      },
      onConnection: (conn) => {
        conn.ws.send(JSON.stringify({ event: 'executor.resync', executor_id: EX, data: { owned_mission_ids: ids } }));
      },
    });
    s.defer(() => serve.close());
    const bridge = spawnBridge(s, {
      aiwgServeUrl: serve.url,
      watchDir: root,
      retryBaseMs: 5,
      requestTimeoutMs: 300,
      reconnectBaseMs: 20,
      reconnectMaxMs: 200,
    });
    await within(bridge.ready, 60_000, 'the bridge ready');
    const missions = () => JSON.parse(fs.readFileSync(file, 'utf8')).missions;
    await waitFor(() => missions().every((m) => m.status === 'assigned'), 30_000, 'every mission assigned');
    for (const m of missions()) {
      assert.equal(m.executorId, EX, m.id);
      assert.equal(m.dispatchAttempts, 4, `${m.id}: reset, timeout and 502 were retried`);
    }

    // The stream: started for all, then a cut in the middle of a frame.
    await waitFor(() => serve.open(EX).length === 1, 10_000, 'the executor stream');
    for (const id of ids) serve.send(EX, { event: 'mission.started', mission_id: id, executor_id: EX, data: {} });
    await waitFor(() => missions().every((m) => m.status === 'running'), 10_000, 'every mission running');
    cutMidFrame(serve.open(EX)[0].ws);
    await waitFor(() => serve.connections.length === 2 && serve.open(EX).length === 1, 10_000, 'a reconnect after the cut');

    // A flood of progress events, as fast as the socket takes them.
    const before = rssMb(bridge.child.pid);
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, rssMb(bridge.child.pid)); }, 20);
    s.defer(() => clearInterval(sampler));
    const ws = serve.open(EX)[0].ws;
    // Half are progress for known missions (journaled), half are events
    // for missions the bridge does not know (kept a while, in case their
    // 202 is late: at most a fixed number of them).
    for (let i = 0; i < FLOOD; i++) {
      const event = i % 2
        ? { event: 'mission.started', mission_id: `m-ghost-${i}`, executor_id: EX, data: { i, padding: PADDING } }
        : { event: 'mission.progress', mission_id: ids[i % MISSIONS], executor_id: EX, data: { i, padding: PADDING } };
      ws.send(JSON.stringify(event));
      if (ws.bufferedAmount > 8 * 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
    }
    for (const id of ids) ws.send(JSON.stringify({ event: 'mission.completed', mission_id: id, executor_id: EX, data: { summary: 'ok' } }));
    await waitFor(() => missions().every((m) => m.status === 'done'), 120_000, 'every mission done after the flood');
    clearInterval(sampler);

    assert.equal(bridge.exit, null, 'the bridge is still up');
    assert.ok(peak < RSS_BOUND_MB, `peak RSS ${peak.toFixed(1)} MB during a ${(FLOOD * PADDING.length / 1e6).toFixed(0)} MB flood (bound ${RSS_BOUND_MB} MB)`);
    const journal = fs.readFileSync(path.join(path.dirname(file), 'log.jsonl'), 'utf8').trim().split('\n');
    assert.equal(journal.filter((l) => l.includes('"mission.progress"')).length, FLOOD / 2, 'every progress event was journaled');
    t.diagnostic(`RSS ${before.toFixed(1)} MB before the flood, peak ${peak.toFixed(1)} MB`);
    bridge.child.send({ type: 'stop' });
    assert.deepEqual(await within(bridge.exited, 10_000, 'the bridge exits'), { code: 0, signal: null });
  });
});
