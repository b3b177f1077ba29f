/**
 * TypeScript schedule module → `{"type": "module"}` spec node, on the
 * author's machine: the only import allowed is `lrbridge/schedules`, the file
 * is type-checked against the library's own declarations (ES2022, no DOM, no
 * Node types: `process` or `require` do not type-check), and the emitted
 * CommonJS is the node's code. Binding the node (modules/spec.ts) then
 * evaluates and probes it in the sandbox, exactly as a server will.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { SPEC_LIMITS } from "../core/limits";
import { LIBRARY_IMPORT, distDir, libraryVersion } from "./sandbox";

import { CompileError } from "./errors";

export { CompileError };

export interface ModuleSpec {
  type: "module";
  code: string;
  library: string;
  params: Record<string, unknown>;
}

function where(sf: ts.SourceFile, node: ts.Node): string {
  const { line, character } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
  return `${sf.fileName}:${line + 1}:${character + 1}`;
}

/** Every import, export-from, require() and import() names `lrbridge/schedules` with a literal. */
export function checkImports(sf: ts.SourceFile): void {
  const problems: string[] = [];
  const spec = (node: ts.Node, arg: ts.Node | undefined) => {
    if (!arg || !ts.isStringLiteralLike(arg)) problems.push(`${where(sf, node)}: imports must name ${LIBRARY_IMPORT} literally`);
    else if (arg.text !== LIBRARY_IMPORT) problems.push(`${where(sf, node)}: only ${LIBRARY_IMPORT} can be imported, got '${arg.text}'`);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || (ts.isExportDeclaration(node) && node.moduleSpecifier)) spec(node, node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) spec(node, node.moduleReference.expression);
    else if (ts.isCallExpression(node) && (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === "require"))) {
      spec(node, node.arguments[0]);
    } else if (ts.isImportTypeNode(node)) {
      const lit = ts.isLiteralTypeNode(node.argument) ? node.argument.literal : undefined;
      spec(node, lit);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  if (problems.length) throw new CompileError(problems.join("\n"));
}

const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  lib: ["lib.es2022.d.ts"],
  types: [],
  strict: true,
  noEmitOnError: true,
  skipLibCheck: true,
  sourceMap: false,
  declaration: false,
  esModuleInterop: false,
  newLine: ts.NewLineKind.LineFeed,
};

/** Type-check and transpile one module file; returns its JavaScript. */
export function compileFile(file: string): string {
  const text = readFileSync(file, "utf8");
  if (text.length > SPEC_LIMITS.module_code_length) {
    throw new CompileError(`${file}: ${text.length} characters is over the limit module_code_length = ${SPEC_LIMITS.module_code_length}`);
  }
  checkImports(ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS));
  const declarations = join(distDir(), "schedules.d.ts");
  const options: ts.CompilerOptions = { ...OPTIONS, paths: { [LIBRARY_IMPORT]: [declarations] } };
  const host = ts.createCompilerHost(options);
  let js: string | null = null;
  host.writeFile = (name, data) => {
    if (name.endsWith(".js")) js = data;
  };
  const program = ts.createProgram({ rootNames: [file], options, host });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length) {
    throw new CompileError(
      ts.formatDiagnostics(diagnostics, {
        getCanonicalFileName: (f) => f,
        getCurrentDirectory: () => process.cwd(),
        getNewLine: () => "\n",
      }).trimEnd(),
    );
  }
  const source = program.getSourceFile(file);
  const out = program.emit(source);
  if (out.emitSkipped || js === null) throw new CompileError(`${file}: TypeScript emitted nothing`);
  return js;
}

/** The spec node of a module file with these params (not yet bound: bind it to evaluate and probe it). */
export function compileModule(file: string, params: Record<string, unknown> = {}): ModuleSpec {
  return { type: "module", code: compileFile(file), library: libraryVersion(), params };
}
