// Compile a TypeScript file the way a user of the package would (strict,
// NodeNext resolution): its error messages (none when it compiles) and the
// program, to see which declaration files it used.

import ts from 'typescript';

/**
 * Type-check `file` (nothing is emitted): `{errors, program}`. `text`: the
 * file's content, when it is not on disk (nothing is written then).
 */
export function typeCheck(file, text) {
  const options = {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  if (text !== undefined) {
    const { fileExists, readFile } = host;
    host.fileExists = (f) => f === file || fileExists.call(host, f);
    host.readFile = (f) => (f === file ? text : readFile.call(host, f));
  }
  const program = ts.createProgram([file], options, host);
  const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  return { errors, program };
}

/**
 * A module that loads every `{specifier, names}` as ESM (`import * as`, for
 * a .mts) or as CommonJS (`import … = require`, for a .cts) and uses each of
 * its names: it compiles only if each specifier has types with those names.
 */
export function importEvery(modules, format) {
  const load = format === 'esm' ? (id, spec) => `import * as ${id} from '${spec}'` : (id, spec) => `import ${id} = require('${spec}')`;
  const lines = modules.map(({ specifier }, i) => load(`m${i}`, specifier));
  const uses = modules.flatMap(({ names }, i) => names.map((name) => `m${i}.${name}`));
  return `${lines.join('\n')}\n\nvoid [${uses.join(', ')}]\n`;
}
