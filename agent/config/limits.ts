/**
 * Bounds on a config file, checked before any work that grows with what the file makes of itself: its size
 * (before it is read), how deep flow collections nest (before the YAML composer, which recurses per level,
 * sees them), and, on the parsed document, how deep it nests and how many nodes it stands for once every
 * alias is expanded (an "alias bomb" of nine nested aliases stands for a billion). All of it in time linear
 * in the file, with no recursion: a config that breaks a bound is one problem, as any other config problem.
 *
 * A real config is a few KiB and a few hundred nodes; an inline register map for a large meter a few
 * thousand. The bounds leave room for hundreds of such meters.
 */
import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  Lexer,
  type Document,
  type LineCounter,
  type Node,
} from 'yaml';
import type { ConfigProblem } from './errors.js';

export interface ConfigLimits {
  /** Largest config file, checked with stat before reading (1 MiB). */
  readonly maxBytes: number;
  /** Deepest nesting of mappings and lists (64; the schema needs 6). */
  readonly maxDepth: number;
  /** Most YAML nodes the document stands for, aliases expanded (100,000). */
  readonly maxNodes: number;
}

export const CONFIG_LIMITS: ConfigLimits = Object.freeze({
  maxBytes: 1024 * 1024,
  maxDepth: 64,
  maxNodes: 100_000,
});

const kib = (n: number) => `${Math.round(n / 1024)} KiB`;

/** The file is larger than any config: refused before it is read. */
export function tooLargeProblem(file: string, bytes: number, limits = CONFIG_LIMITS): ConfigProblem {
  return {
    code: 'FILE_TOO_LARGE',
    file,
    line: 0,
    col: 0,
    field: '',
    message: `the file is ${bytes > limits.maxBytes * 4 ? `over ${kib(limits.maxBytes * 4)}` : kib(bytes)}, more than the ${kib(limits.maxBytes)} a config may have`,
    fix: 'pass the meterlink config file (a few KiB of YAML) with --config',
  };
}

function limitProblem(file: string, pos: { line: number; col: number }, message: string): ConfigProblem {
  return {
    code: 'YAML_LIMIT',
    file,
    line: pos.line,
    col: pos.col,
    field: '',
    message,
    fix: 'write the config out plainly: a few levels of mappings and lists, anchors and aliases only for small shared parts',
  };
}

/**
 * Checks the text before it is parsed: its length, and how deep `[`/`{` nest (counted on the YAML lexer's
 * tokens, so brackets inside quoted or plain text do not count).
 */
export function checkText(text: string, file: string, limits = CONFIG_LIMITS): ConfigProblem | undefined {
  const bytes = Buffer.byteLength(text);
  if (bytes > limits.maxBytes) return tooLargeProblem(file, bytes, limits);
  let depth = 0;
  let tokens = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') {
      if (++depth > limits.maxDepth)
        return limitProblem(
          file,
          { line: 0, col: 0 },
          `flow collections ([ ] and { }) nest more than ${limits.maxDepth} deep`,
        );
    } else if (token === ']' || token === '}') depth = Math.max(0, depth - 1);
    // Every node takes at least one token; far more tokens than nodes allowed means far too many nodes.
    if (++tokens > 8 * limits.maxNodes)
      return limitProblem(file, { line: 0, col: 0 }, `more than ${limits.maxNodes} YAML nodes`);
  }
  return undefined;
}

interface Frame {
  node: Node;
  children: (Node | null)[];
  next: number;
  size: number;
  /** Scalar keys seen in this mapping, for duplicates. */
  keys?: Set<unknown>;
}

function childrenOf(node: Node): (Node | null)[] {
  const out: (Node | null)[] = [];
  if (isMap(node)) {
    for (const p of node.items) {
      out.push(isPair(p) ? ((p.key as Node | null) ?? null) : null);
      out.push(isPair(p) ? ((p.value as Node | null) ?? null) : null);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) out.push((item as Node | null) ?? null);
  }
  return out;
}

/**
 * Walks the parsed document once, without recursion: nesting depth, nodes with aliases expanded (an alias
 * counts as much as the node it names, measured once), and duplicate keys within a mapping (YAML forbids
 * them; the parser's own check compares each key with every earlier one, quadratic in a mapping's size).
 * Returns the problems: at most one limit problem, then every duplicate key.
 */
export function checkDocument(
  doc: Document,
  lines: LineCounter,
  file: string,
  limits = CONFIG_LIMITS,
): ConfigProblem[] {
  const root = doc.contents as Node | null;
  if (!root) return [];
  const at = (n: Node | null | undefined) => lines.linePos(n?.range?.[0] ?? 0);
  const sizes = new Map<Node, number>();
  const anchors = new Map<string, Node>();
  const duplicates: ConfigProblem[] = [];
  const frame = (node: Node): Frame => ({
    node,
    children: childrenOf(node),
    next: 0,
    size: 1,
    ...(isMap(node) ? { keys: new Set<unknown>() } : {}),
  });
  if (root.anchor) anchors.set(root.anchor, root);
  const stack: Frame[] = [frame(root)];
  let total = 1;
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as Frame;
    if (top.next < top.children.length) {
      const isKey = top.keys !== undefined && top.next % 2 === 0;
      const child = top.children[top.next++] ?? null;
      if (child === null) continue;
      if (isKey && isScalar(child)) {
        if (top.keys?.has(child.value)) {
          const pos = at(child);
          duplicates.push({
            code: 'YAML_SYNTAX',
            file,
            line: pos.line,
            col: pos.col,
            field: '',
            message: `YAML syntax: Map keys must be unique (${JSON.stringify(String(child.value))} is given twice)`,
            fix: 'remove one of the two keys',
          });
        }
        top.keys?.add(child.value);
      }
      let add = 1;
      if (isAlias(child)) {
        const target = anchors.get(child.source);
        // An alias to an enclosing node (not yet measured) would expand forever.
        add = target === undefined ? 1 : (sizes.get(target) ?? Infinity);
        if (add === Infinity)
          return [
            limitProblem(file, at(child), `the alias *${child.source} refers to a node that contains it`),
          ];
      } else {
        if (child.anchor) anchors.set(child.anchor, child);
        if (isMap(child) || isSeq(child)) {
          if (stack.length >= limits.maxDepth)
            return [
              limitProblem(file, at(child), `mappings and lists nest more than ${limits.maxDepth} deep`),
            ];
          stack.push(frame(child));
          total += 1;
          continue;
        }
        sizes.set(child, 1);
      }
      top.size += add;
      total += add;
      if (total > limits.maxNodes)
        return [
          limitProblem(
            file,
            at(child),
            isAlias(child)
              ? `aliases expand the document beyond ${limits.maxNodes} YAML nodes (at *${child.source})`
              : `more than ${limits.maxNodes} YAML nodes`,
          ),
        ];
    } else {
      stack.pop();
      sizes.set(top.node, top.size);
      const parent = stack[stack.length - 1];
      if (parent) parent.size += top.size;
    }
  }
  return duplicates;
}
