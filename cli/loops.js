'use strict';
// `mc-native loops`: the project's loop registry (ExternalMultiLoopStateManager)
// from the terminal: the active loops, the crashed ones, archiving one.

const fs = require('node:fs');
const path = require('node:path');
const out = require('./output.js');

const OPTIONS = {
  project: { type: 'string', default: '.' },
  json: { type: 'boolean', default: false },
  force: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

const HELP = `Usage: mc-native loops list [--project DIR] [--json]
       mc-native loops crashed [--project DIR] [--json]
       mc-native loops archive <loop-id> [--project DIR] [--force]

The agent loops registered in DIR/.aiwg/ralph-external/registry.json.

  list       the active loops, with whether their process is alive
  crashed    loops marked running whose process is gone
  archive    move a loop to archive/ and drop it from the registry
             (refused while its process is alive, unless --force)

Options:
  --project DIR   the project (default: the current directory)
  --json          JSON instead of a table (list, crashed)
  --force         archive a loop whose process is still alive
  -h, --help      show this help

Reading never creates the registry. Exit codes: 0 ok, 1 runtime failure
(no such project, registry or loop), 2 usage error.
`;

/** The project's manager, or null when no registry exists there yet. */
function openRegistry(project) {
  out.existingDirectory(project, 'project directory');
  const { ExternalMultiLoopStateManager } = require('../js/external-multi-loop-state-manager.js');
  const manager = new ExternalMultiLoopStateManager(path.resolve(project));
  return fs.existsSync(manager.registryPath) ? manager : null;
}

/** `2026-05-09 07:13Z` from an ISO time; other values as they are. */
function shortTime(iso) {
  return typeof iso === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(iso) ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}Z` : String(iso ?? '-');
}

function table(loops, paint) {
  const rows = [['LOOP', 'STATUS', 'ITERATION', 'PID', 'STARTED', 'TASK'].map((h) => paint('dim', h))];
  for (const loop of loops) {
    const pid = loop.pid ? `${loop.pid} ${loop.alive ? paint('green', 'alive') : paint('red', 'gone')}` : '-';
    rows.push([
      String(loop.loop_id),
      String(loop.status),
      `${loop.iteration ?? 0}/${loop.max_iterations ?? '?'}`,
      pid,
      shortTime(loop.started_at),
      out.truncate(loop.task_summary, 50),
    ]);
  }
  return out.columns(rows).join('\n');
}

/** `list` and `crashed`: entries, each with `alive`, as a table or JSON. */
function show(manager, which, values) {
  const entries = !manager ? [] : which === 'crashed' ? manager.detectCrashedLoops() : manager.listActiveLoops();
  const loops = entries.map((e) => ({ ...e, alive: Boolean(e.pid) && manager.processExists(e.pid) }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(loops, null, 2)}\n`);
  } else if (!manager) {
    process.stdout.write(`No loop registry in ${path.resolve(values.project)}: no loops have run here.\n`);
  } else if (loops.length === 0) {
    process.stdout.write(which === 'crashed' ? 'No crashed loops.\n' : 'No active loops.\n');
  } else {
    process.stdout.write(`${table(loops, out.painter(process.stdout))}\n`);
  }
  return out.EXIT.OK;
}

async function archive(manager, loopId, values) {
  if (!manager) throw new out.CliError(`no loop registry in ${path.resolve(values.project)}`, 'pass --project DIR');
  if (!values.force && manager.isLoopAlive(loopId)) {
    const pid = manager.getLoop(loopId).currentPid;
    throw new out.CliError(`loop ${loopId} is still running (pid ${pid})`, 'stop it first, or pass --force');
  }
  try {
    await manager.archiveLoop(loopId);
  } catch (err) {
    throw new out.CliError(err.message);
  }
  process.stdout.write(`Archived ${loopId} to ${path.join(manager.archiveDir, loopId)}\n`);
  return out.EXIT.OK;
}

async function run(args) {
  const { values, positionals } = out.parse(args, OPTIONS, { positionals: true });
  if (values.help) {
    process.stdout.write(HELP);
    return out.EXIT.OK;
  }
  const [action, loopId, ...extra] = positionals;
  if (!action) throw new out.UsageError('missing action: list, crashed or archive <loop-id>');
  if (action === 'list' || action === 'crashed') {
    if (loopId !== undefined) throw new out.UsageError(`unexpected argument '${loopId}'`);
    return show(openRegistry(values.project), action, values);
  }
  if (action === 'archive') {
    if (!loopId) throw new out.UsageError('archive needs a loop id');
    if (extra.length) throw new out.UsageError(`unexpected argument '${extra[0]}'`);
    return archive(openRegistry(values.project), loopId, values);
  }
  throw new out.UsageError(`unknown action '${action}' (list, crashed or archive)`);
}

module.exports = { summary: 'the loop registry: list, crashed, archive <id>', help: HELP, run };
