// Another writer of session.json, as the `aiwg mc` CLI is one: appends
// missions one read-modify-write at a time, with no lock, the way older CLIs
// write (in place) or newer ones do (temp file + rename).
//
//   node queue-appender.mjs <session.json> <count> <interval ms> <in-place|rename> <id prefix>
//
// Prints one JSON line when done: {ids: [...]} in the order appended.

import fs from 'node:fs';
import path from 'node:path';

const [file, countArg, intervalArg, mode, prefix] = process.argv.slice(2);
const count = Number(countArg);
const interval = Number(intervalArg);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(sleeper, 0, 0, ms);

/** The file as it is, read until it parses (a writer may be mid-write). */
function read() {
  for (let tries = 0; ; tries++) {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      if (tries > 5000) throw err;
      sleep(1);
    }
  }
}

const ids = [];
for (let i = 0; i < count; i++) {
  const session = read();
  const id = `m-${Date.now().toString(36)}-${prefix}${String(i).padStart(4, '0')}`;
  session.missions.push({ id, objective: `appended ${i}`, status: 'queued', loop: 0, maxIterations: 5, priority: 'normal', mode: 'direct' });
  const text = JSON.stringify(session, null, 2);
  if (mode === 'in-place') {
    fs.writeFileSync(file, text);
  } else {
    const tmp = path.join(path.dirname(file), `session.json.cli-${process.pid}-${i}`);
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  }
  ids.push(id);
  sleep(interval);
}
process.stdout.write(`${JSON.stringify({ ids })}\n`);
