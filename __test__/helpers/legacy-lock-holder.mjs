// Takes the registry lock the way the original JavaScript
// ExternalMultiLoopStateManager did, holds it, and lets it go. Plain Node,
// no addon: it stands in for an old aiwg process sharing the project.
//
//   node legacy-lock-holder.mjs <lockPath> <loopId> <holdMs> [maxAttempts=300]
//
// Protocol (the original's): fs.writeFileSync(lockPath, JSON, {flag:'wx'});
// on EEXIST read the holder; a lock whose lease has expired or whose pid is
// dead is unlinked and the create retried at once; otherwise sleep 100 ms and
// retry, at most maxAttempts times. Release = unlink.
//
// Prints one JSON object per line on stdout:
//   {event:'start', pid, at}
//   {event:'waiting', holderPid, holderLoopId, at}      (once per distinct holder)
//   {event:'broke-stale', holderPid, at}
//   {event:'acquired', at, fencingToken}
//   {event:'releasing', at, stillOwned, content}        (`at` taken just before the unlink)
//   {event:'released', at}
//   {event:'failed', at, attempts, message}             (exit code 2)

import fs from 'node:fs';

const [lockPath, loopId, holdMsArg, maxAttemptsArg] = process.argv.slice(2);
const holdMs = Number(holdMsArg ?? 0);
const maxAttempts = Number(maxAttemptsArg ?? 300);
const emit = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function processExists(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

async function acquireLock() {
  const seen = new Set();
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const now = Date.now();
    const fencingToken = now * 1000 + Math.floor(Math.random() * 1000);
    const record = { pid: process.pid, loopId, timestamp: now, leaseExpiry: now + 30000, fencingToken };
    try {
      fs.writeFileSync(lockPath, JSON.stringify(record), { flag: 'wx' });
      return record;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
    let holder;
    try {
      holder = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
    } catch (e) {
      if (e.code === 'ENOENT') {
        attempt--; // released between our create and our read: try again at once
        continue;
      }
      holder = null; // half-written or corrupt: wait, as for a live holder
    }
    if (holder && (Date.now() > holder.leaseExpiry || !processExists(holder.pid))) {
      emit({ event: 'broke-stale', holderPid: holder.pid, at: Date.now() });
      try {
        fs.unlinkSync(lockPath);
      } catch (e) {
        if (e.code !== 'ENOENT') throw e;
      }
      continue;
    }
    const key = holder ? `${holder.pid}:${holder.fencingToken}` : 'unreadable';
    if (!seen.has(key)) {
      seen.add(key);
      emit({ event: 'waiting', holderPid: holder?.pid ?? null, holderLoopId: holder?.loopId ?? null, at: Date.now() });
    }
    await sleep(100);
  }
  emit({ event: 'failed', at: Date.now(), attempts: maxAttempts, message: `Failed to acquire lock after ${maxAttempts} attempts` });
  process.exit(2);
}

emit({ event: 'start', pid: process.pid, at: Date.now() });
const record = await acquireLock();
emit({ event: 'acquired', at: Date.now(), fencingToken: record.fencingToken });
await sleep(holdMs);
let content = null;
let stillOwned = false;
try {
  content = fs.readFileSync(lockPath, 'utf8');
  const now = JSON.parse(content);
  stillOwned = now.pid === process.pid && now.fencingToken === record.fencingToken;
} catch {}
const at = Date.now();
emit({ event: 'releasing', at, stillOwned, content });
try {
  fs.unlinkSync(lockPath);
} catch {}
emit({ event: 'released', at });
