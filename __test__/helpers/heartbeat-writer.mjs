// A writer faster than any fsync: rewrites session.json as fast as it can,
// with no lock, bumping a `heartbeat` field and keeping the rest as read
// (a read-modify-write, by temp file + rename, as newer `aiwg mc` CLIs
// write). Runs until SIGTERM, then prints one JSON line: {heartbeat: n},
// the last value it wrote.
//
//   node heartbeat-writer.mjs <session.json>

import fs from 'node:fs';
import path from 'node:path';

const [file] = process.argv.slice(2);
const tmp = path.join(path.dirname(file), `session.json.heartbeat-${process.pid}`);
let heartbeat = 0;
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

/** One rewrite; the file may be mid-swap by another writer: then skip a turn. */
function beat() {
  let session;
  try {
    session = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return;
  }
  session.heartbeat = ++heartbeat;
  fs.writeFileSync(tmp, JSON.stringify(session, null, 2));
  fs.renameSync(tmp, file);
}

function run() {
  // A burst, then a turn of the event loop (for SIGTERM).
  for (let i = 0; i < 50 && !stopping; i++) beat();
  if (stopping) {
    process.stdout.write(`${JSON.stringify({ heartbeat })}\n`);
    return;
  }
  setImmediate(run);
}
run();
