#!/usr/bin/env node
'use strict';
// `npm run bench`: every scenario below, one after the other, as tables (or
// one JSON document with --json). A scenario is a module exporting
// `{name, description, options?, run(values, {timeoutMs}) → [{title, rows}]}`;
// its `options` join the command line (node:util parseArgs). Add one here.

const fs = require('node:fs');
const os = require('node:os');
const { parseArgs } = require('node:util');
const lib = require('./lib.js');

const FLOOR = require('./disk-floor.js');

const SCENARIOS = [
  FLOOR,
  require('./loop-registry.js'),
  require('./registry-calls.js'),
  require('./queue-tailer.js'),
  require('./executor-events.js'),
];

const common = {
  only: { type: 'string', description: 'run only these scenarios (comma-separated)' },
  json: { type: 'boolean', default: false, description: 'print one JSON document instead of tables' },
  timeout: { type: 'string', default: '120', description: 'seconds allowed for each group of child processes' },
  help: { type: 'boolean', short: 'h', default: false, description: 'show this help' },
};

const options = Object.assign({}, common, ...SCENARIOS.map((s) => s.options || {}));

function usage() {
  const lines = Object.entries(options).map(([name, o]) => {
    const arg = o.type === 'string' ? ' <value>' : '';
    const dflt = o.default !== undefined && o.type === 'string' ? ` (default ${o.default})` : '';
    return `  --${name}${arg}`.padEnd(28) + `${o.description || ''}${dflt}`;
  });
  const names = SCENARIOS.map((s) => `  ${s.name.padEnd(26)}${s.description}`);
  return `usage: node bench/run.js [options]\n\noptions:\n${lines.join('\n')}\n\nscenarios:\n${names.join('\n')}\n`;
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({ options, strict: true, allowPositionals: false }));
  } catch (err) {
    process.stderr.write(`${err.message}\n\n${usage()}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(usage());
    return 0;
  }
  const wanted = values.only ? values.only.split(',').map((name) => name.trim()).filter(Boolean) : null;
  const unknown = (wanted ?? []).filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length || wanted?.length === 0) {
    process.stderr.write(`no scenario named ${unknown.join(', ') || values.only}; known: ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
    return 2;
  }
  const selected = wanted ? SCENARIOS.filter((s) => wanted.includes(s.name)) : SCENARIOS;
  const timeoutMs = lib.positiveInt('timeout', values.timeout) * 1000;
  const report = {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: os.cpus().length,
    tmpdir: lib.dirLabel(os.tmpdir()),
    scenarios: [],
  };
  if (!values.json) console.log(`node ${report.node}, ${report.platform}, ${report.cpus} CPUs, tmpdir ${report.tmpdir}`);
  let failed = false;
  // The floor runs first and, when anything else runs, last again: every
  // ratio is read against floors measured in the same run.
  const order = selected.includes(FLOOR) && selected.length > 1 ? [...selected, FLOOR] : selected;
  // Shared by the scenarios: the floors measured, and the sweeps to set beside them.
  const context = { timeoutMs, floors: [], sweeps: [] };
  for (const scenario of order) {
    const began = Date.now();
    try {
      const tables = await scenario.run(values, context);
      report.scenarios.push({ name: scenario.name, ok: true, seconds: (Date.now() - began) / 1000, tables });
      if (!values.json) for (const t of tables) lib.printTable(`[${scenario.name}] ${t.title}`, t.rows);
    } catch (err) {
      failed = true;
      report.scenarios.push({ name: scenario.name, ok: false, error: err.message });
      process.stderr.write(`\n[${scenario.name}] FAILED: ${err.stack || err}\n`);
    }
  }
  const ratios = floorRatios(context);
  if (ratios.length) {
    report.floorRatios = ratios;
    if (!values.json) lib.printTable('[disk-floor] Each sweep against the floors measured first and last in this run', ratios);
  }
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return failed ? 1 : 0;
}

/** One row per sweep: its time beside the floors of as many sessions, as ratios. */
function floorRatios({ floors, sweeps }) {
  return sweeps.map((sweep) => {
    const row = { case: sweep.case, 'sweep ms': sweep.ms };
    const same = floors.filter((f) => f.sessions === sweep.sessions);
    ['first', 'last'].forEach((when, i) => {
      const floor = same[i === 0 ? 0 : same.length - 1];
      const measured = floor && (i === 0 || same.length > 1);
      row[`floor ms (${when})`] = measured ? floor.bestMs : '';
      row[`× floor (${when})`] = measured ? FLOOR.ratio(sweep.ms, floor.bestMs) : '';
    });
    // The POSTs alone, with no disk at all, bound the sweep from below too.
    row['POST floor ms'] = sweep.postsMs ?? '';
    row['× POST floor'] = sweep.postsMs ? FLOOR.ratio(sweep.ms, sweep.postsMs) : '';
    const worst = Math.max(...same.map((f) => FLOOR.ratio(sweep.ms, f.bestMs)));
    row.target = same.length ? lib.target(worst <= sweep.targetRatio, `≤ ${sweep.targetRatio}× floor`) : `no floor of ${sweep.sessions} sessions`;
    return row;
  });
}

main().then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`${err.stack || err}\n`); process.exitCode = 1; },
);
