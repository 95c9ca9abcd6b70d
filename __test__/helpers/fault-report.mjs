// One line per fault test, the same in every one (issue 14's report):
// missions, assigned, lost, duplicated POSTs, corrupt reads, temp files left
// and the time to recover.
//
//   const reads = sessionReads(files);            // read through it while waiting
//   await waitFor(() => reads.statuses().every(...), ...);
//   reportFault(t, { reads, posted, recoverMs });

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Reads of `files` that count themselves. A file that does not parse is a
 * corrupt read: counted, and the test fails at the report (the read gives
 * `null` statuses for it meanwhile, so a wait goes on).
 */
export function sessionReads(files) {
  const reads = { files, count: 0, corrupt: [] };
  reads.missions = () =>
    files.flatMap((file) => {
      reads.count += 1;
      const text = fs.readFileSync(file, 'utf8');
      try {
        return JSON.parse(text).missions;
      } catch (e) {
        reads.corrupt.push(`${file}: ${e.message}`);
        return [null];
      }
    });
  reads.statuses = () => reads.missions().map((m) => m?.status ?? null);
  /** The statuses of one of the files, counted with the rest. */
  reads.statusesOf = (file) => {
    const one = sessionReads([file]);
    const statuses = one.statuses();
    reads.count += one.count;
    reads.corrupt.push(...one.corrupt);
    return statuses;
  };
  return reads;
}

/** Temp files (`*.tmp`) beside any of `files`. */
export function tempsBeside(files) {
  const dirs = new Set(files.map((f) => path.dirname(f)));
  return [...dirs].flatMap((dir) => fs.readdirSync(dir).filter((name) => name.endsWith('.tmp')));
}

/**
 * Print the fault's line and check what every fault must keep: no corrupt
 * read. `posted`: the mission keys POSTed, one per request; `landed`: the
 * status every mission should end in.
 */
export function reportFault(t, { reads, posted, recoverMs, landed = 'assigned', note = '' }) {
  const missions = reads.missions();
  const assigned = missions.filter((m) => m?.status === landed).length;
  const duplicated = posted.length - new Set(posted).size;
  const temps = tempsBeside(reads.files).length;
  t.diagnostic(
    `fault report: ${missions.length} missions, ${assigned} ${landed}, ${missions.length - assigned} lost, ` +
      `${duplicated} duplicated, ${reads.corrupt.length} corrupt of ${reads.count} reads, ${temps} temps left` +
      `${recoverMs === undefined ? '' : `, recovered in ${Math.round(recoverMs)} ms`}${note ? `; ${note}` : ''}`,
  );
  assert.deepEqual(reads.corrupt, [], 'a session file read half-written');
}
