// Compile a TypeScript file the way a user of the package would (strict,
// NodeNext resolution): its error messages (none when it compiles) and the
// program, to see which declaration files it used.

import ts from 'typescript';

/** Type-check `file` (nothing is emitted): `{errors, program}`. */
export function typeCheck(file) {
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
  });
  const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  return { errors, program };
}
