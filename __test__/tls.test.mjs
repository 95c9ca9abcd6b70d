// HTTPS and WSS through the Rust clients (issue 11): a local server with a
// certificate of a test CA is reached when NODE_EXTRA_CA_CERTS names that
// CA, as Node's own clients do, and refused when it does not.
// Run: node --test __test__/tls.test.mjs

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const CHILD = path.join(HERE, 'helpers', 'tls-roundtrip.mjs');
const CA = path.join(HERE, 'fixtures', 'tls', 'ca.pem');

function roundtrip(extraCa) {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  if (extraCa) env.NODE_EXTRA_CA_CERTS = extraCa;
  const child = spawnSync(process.execPath, [CHILD], { env, encoding: 'utf8', timeout: 30_000 });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout.trim().split('\n').at(-1));
}

describe('TLS with a CA trusted through NODE_EXTRA_CA_CERTS', () => {
  it('dispatches over HTTPS and follows an executor over WSS', () => {
    const { dispatch, ws } = roundtrip(CA);
    assert.equal(dispatch.outcome, 'accepted', JSON.stringify(dispatch));
    assert.equal(dispatch.executorId, 'exec-tls');
    assert.equal(ws.event, 'mission.started');
    assert.equal(ws.states[0], 'opened');
  });

  it('refuses the same server when the CA is not trusted', () => {
    const { dispatch, ws } = roundtrip(null);
    assert.equal(dispatch.outcome, 'failed');
    assert.equal(dispatch.reason, 'unreachable');
    assert.match(dispatch.message, /^dispatch exhausted 1 attempts: network: .*certificate/i);
    assert.equal(ws.event, null);
    assert.ok(!ws.states.includes('opened'), JSON.stringify(ws.states));
  });
});
