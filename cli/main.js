'use strict';
// `mc-native <command>`: picks the subcommand, and turns every failure into
// one line on stderr and an exit code (0 ok, 1 runtime failure, 2 usage).

const out = require('./output.js');

/** The subcommands, loaded when used (so --help works without the addon). */
const COMMANDS = {
  bridge: () => require('./bridge.js'),
  status: () => require('./status.js'),
  loops: () => require('./loops.js'),
};

function help() {
  const rows = Object.entries(COMMANDS).map(([name, load]) => [`  ${name}`, load().summary]);
  return `Usage: mc-native <command> [options]

Native Mission Control for aiwg: the queue bridge and the loop registry.

Commands:
${out.columns(rows).join('\n')}

Run "mc-native <command> --help" for a command's options.

Options:
  -h, --help      show this help
  -V, --version   print the version

Exit codes: 0 ok, 1 runtime failure, 2 usage error, 130 a second Ctrl-C.
`;
}

async function dispatch(argv) {
  const [name, ...rest] = argv;
  if (name === '-h' || name === '--help') {
    process.stdout.write(help());
    return out.EXIT.OK;
  }
  if (name === '-V' || name === '--version') {
    process.stdout.write(`${require('../package.json').version}\n`);
    return out.EXIT.OK;
  }
  if (name === 'help' && rest.length === 0) return dispatch(['--help']);
  if (name === 'help') return dispatch([rest[0], '--help']);
  if (name === undefined) {
    process.stderr.write(help());
    return out.EXIT.USAGE;
  }
  if (!Object.hasOwn(COMMANDS, name)) throw new out.UsageError(`unknown command '${name}'`);
  return COMMANDS[name]().run(rest);
}

/** One line on stderr for `err` from `command` (if known); → the exit code it stands for. */
function report(err, command) {
  const paint = out.painter(process.stderr);
  const who = Object.hasOwn(COMMANDS, command) ? `mc-native ${command}` : 'mc-native';
  const prefix = paint(['bold', 'red'], `${who}:`);
  if (err instanceof out.UsageError) {
    process.stderr.write(`${prefix} ${err.message} (see ${who} --help)\n`);
    return out.EXIT.USAGE;
  }
  const message = err instanceof Error ? err.message : String(err);
  const hint = err instanceof out.CliError && err.hint ? paint('dim', `; ${err.hint}`) : '';
  process.stderr.write(`${prefix} ${message.split('\n')[0]}${hint}\n`);
  return out.EXIT.FAILURE;
}

/** Run `mc-native` with `argv` (without node and the script) and set the exit code. */
async function main(argv) {
  // A reader that went away (`| head`) ends the command, not with a stack trace.
  process.stdout.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(out.EXIT.OK);
  });
  let code;
  try {
    code = await dispatch(argv);
  } catch (err) {
    code = report(err, argv[0]);
  }
  process.exitCode = code;
  // Whatever a library left running may not hold the exit back.
  setTimeout(() => process.exit(code), 1000).unref();
}

module.exports = { main };
