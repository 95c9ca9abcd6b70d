'use strict';
// `mc-native status`: the queue's sessions and their missions by status,
// once or (--follow) every time a session file changes.

const fs = require('node:fs');
const path = require('node:path');
const out = require('./output.js');

/** Changes closer together than this make one redraw. */
const DEBOUNCE_MS = 100;

const OPTIONS = {
  watch: { type: 'string', default: out.DEFAULT_WATCH_DIR },
  json: { type: 'boolean', default: false },
  follow: { type: 'boolean', short: 'f', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

const HELP = `Usage: mc-native status [options]

Show the sessions of the mission queue and their missions, grouped by
status in lifecycle order (queued, assigned, running, hitl_required,
suspended, paused, done, failed, aborted).

Options:
  --watch DIR     the queue: DIR/sessions/<id>/session.json
                  (default ${out.DEFAULT_WATCH_DIR})
  --json          JSON instead of a table (with --follow: one line per change)
  -f, --follow    redraw whenever a session file changes, until Ctrl-C
  -h, --help      show this help

Exit codes: 0 ok (also when --follow is stopped with Ctrl-C or SIGTERM),
1 runtime failure (e.g. the watch directory does not exist), 2 usage error.
`;

/** `{status: n}` in lifecycle order, unknown statuses after. */
function countByStatus(missions) {
  const counts = {};
  for (const m of missions) counts[m.status] = (counts[m.status] || 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => rank(a) - rank(b)));
}

function rank(status) {
  const i = out.STATUS_ORDER.indexOf(status);
  return i === -1 ? out.STATUS_ORDER.length : i;
}

/** The queue as data: what `--json` prints and the table shows. */
async function collect(watchDir) {
  const { discoverSessions, readSession } = require('../js/queue-tailer.js');
  const sessions = [];
  for (const file of await discoverSessions(watchDir)) {
    const doc = await readSession(file);
    const dirName = path.basename(path.dirname(file));
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      // A directory without a session file is not a session (yet).
      if (fs.existsSync(file)) sessions.push({ id: dirName, file, unreadable: true, counts: {}, missions: [] });
      continue;
    }
    const missions = Array.isArray(doc.missions) ? doc.missions.filter((m) => m && typeof m === 'object') : [];
    sessions.push({
      id: typeof doc.id === 'string' ? doc.id : dirName,
      name: doc.name ?? null,
      state: doc.state ?? null,
      file,
      counts: countByStatus(missions),
      missions,
    });
  }
  const all = sessions.flatMap((s) => s.missions);
  return { watchDir, totals: { sessions: sessions.length, missions: all.length, counts: countByStatus(all) }, sessions };
}

/** `2 running, 1 done`, each count in its status colour. */
function countsText(paint, counts) {
  return Object.entries(counts)
    .map(([status, n]) => paint(out.STATUS_STYLE[status] || 'reset', `${n} ${status}`))
    .join(', ');
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The report as lines of text. */
function render(report, paint) {
  const { totals } = report;
  const head = `${paint('bold', report.watchDir)}: ${plural(totals.sessions, 'session')}, ${plural(totals.missions, 'mission')}`;
  const lines = [totals.missions ? `${head} (${countsText(paint, totals.counts)})` : head];
  if (totals.sessions === 0) lines.push('', paint('dim', 'No sessions yet: missions queued with `aiwg mc dispatch` appear here.'));
  for (const session of report.sessions) {
    lines.push('');
    if (session.unreadable) {
      lines.push(`${paint('bold', session.id)}  ${paint('red', 'unreadable')} ${paint('dim', session.file)}`);
      continue;
    }
    const summary = session.missions.length ? `: ${countsText(paint, session.counts)}` : '';
    const name = session.name ? JSON.stringify(session.name) : null;
    lines.push([paint('bold', session.id), name, session.state, `${plural(session.missions.length, 'mission')}${summary}`].filter(Boolean).join('  '));
    if (session.missions.length === 0) continue;
    const rows = [['STATUS', 'MISSION', 'EXECUTOR', 'OBJECTIVE'].map((h) => paint('dim', h))];
    const ordered = session.missions.map((m, i) => [m, i]).sort(([a, i], [b, j]) => rank(a.status) - rank(b.status) || i - j);
    for (const [m] of ordered) {
      const reason = m.failureReason || m.abortReason;
      const status = String(m.status) + (reason && (m.status === 'failed' || m.status === 'aborted') ? ` (${reason})` : '');
      rows.push([
        paint(out.STATUS_STYLE[m.status] || 'reset', status),
        String(m.id),
        m.executorId ? String(m.executorId) : '-',
        out.truncate(m.objective, 60),
      ]);
    }
    lines.push(...out.columns(rows, '  '));
  }
  return lines;
}

/**
 * Redraw on every change under `watchDir` (debounced) until SIGINT or
 * SIGTERM. On a terminal the screen is redrawn in place; piped, a new
 * table (or JSON line) is printed when what it shows has changed.
 */
async function follow(watchDir, json) {
  const stdout = process.stdout;
  const paint = out.painter(stdout);
  const inPlace = Boolean(stdout.isTTY) && !json;
  let last = null;
  let drawing = Promise.resolve();
  let failure = null;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  const fail = (err) => {
    failure = failure || err;
    finish();
  };
  const draw = async () => {
    const report = await collect(watchDir);
    const text = json ? JSON.stringify(report) : render(report, paint).join('\n');
    if (text === last) return;
    const first = last === null;
    last = text;
    if (inPlace) {
      stdout.write(`\x1b[H\x1b[2J${text}\n\n${paint('dim', `following ${watchDir}, Ctrl-C to stop`)}\n`);
    } else if (json) {
      stdout.write(`${text}\n`);
    } else {
      stdout.write(`${first ? '' : '\n'}${paint('dim', `--- ${out.clock(new Date())}`)}\n${text}\n`);
    }
  };
  const schedule = () => {
    drawing = drawing.then(draw).catch(fail);
  };

  let timer = null;
  const watcher = fs.watch(watchDir, { recursive: true }, () => {
    clearTimeout(timer);
    timer = setTimeout(schedule, DEBOUNCE_MS);
  });
  watcher.on('error', (err) => fail(new out.CliError(`stopped following ${watchDir}: ${err.code || err.message}`)));
  const detachSignals = out.onStopSignals(finish);
  try {
    schedule();
    await finished;
  } finally {
    detachSignals();
    watcher.close();
    clearTimeout(timer);
  }
  await drawing;
  if (failure) throw failure;
  return out.EXIT.OK;
}

async function run(args) {
  const { values } = out.parse(args, OPTIONS);
  if (values.help) {
    process.stdout.write(HELP);
    return out.EXIT.OK;
  }
  const watchDir = out.existingDirectory(values.watch, 'watch directory', 'pass --watch DIR pointing at the queue aiwg mc writes');
  if (values.follow) return follow(watchDir, values.json);
  const report = await collect(watchDir);
  const text = values.json ? JSON.stringify(report, null, 2) : render(report, out.painter(process.stdout)).join('\n');
  process.stdout.write(`${text}\n`);
  return out.EXIT.OK;
}

module.exports = { summary: 'show the queue: sessions and their missions by status (--follow: live)', help: HELP, run };
