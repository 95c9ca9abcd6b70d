// Child process for __test__/session-files.test.mjs (writeSessionAtomic
// atomicity). Reads one file in a tight loop and JSON.parses every read,
// counting reads that were missing, empty/partial (JSON.parse failed) or whole.
//
//   node tailer-session-reader.mjs <file> <stopFile>
//
// Prints {type:'ready'} once its first read succeeded (the file must exist
// when it starts), then loops until <stopFile> exists (checked every 64
// reads) or 30 s pass, and finally prints one JSON line:
//   {type:'done', reads, whole, partial, missing, versions, firstBad}
// where `versions` is how many distinct `seq` values it saw.

import fs from 'node:fs';

const [file, stopFile] = process.argv.slice(2);
if (!file || !stopFile) {
  console.error('usage: tailer-session-reader.mjs <file> <stopFile>');
  process.exit(2);
}

const out = { type: 'done', reads: 0, whole: 0, partial: 0, missing: 0, versions: 0, firstBad: null };
const seen = new Set();
const deadline = Date.now() + 30_000;
let announced = false;

for (;;) {
  if ((out.reads & 63) === 0 && (fs.existsSync(stopFile) || Date.now() > deadline)) break;
  out.reads++;
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    out.missing++;
    if (out.firstBad === null) out.firstBad = `read failed: ${err.code || err.message}`;
    continue;
  }
  try {
    const doc = JSON.parse(text);
    out.whole++;
    seen.add(doc.seq);
    if (!announced) {
      announced = true;
      process.stdout.write(`${JSON.stringify({ type: 'ready' })}\n`);
    }
  } catch {
    out.partial++;
    if (out.firstBad === null) out.firstBad = `partial (${text.length} chars): ${JSON.stringify(text.slice(-40))}`;
  }
}
out.versions = seen.size;
process.stdout.write(`${JSON.stringify(out)}\n`);
