/**
 * From a field path (`['meters', 1, 'baud']`) to where it is written in the YAML file, so every problem
 * names its line and column. Missing keys point at the mapping they belong in.
 */
import {
  isMap,
  isScalar,
  isSeq,
  type Document,
  type LineCounter,
  type Node,
  type Pair,
  type YAMLMap,
} from 'yaml';

export type FieldPath = readonly (string | number)[];

/** `meters[1].baud` */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

export interface Position {
  line: number;
  col: number;
}

/**
 * Line and column of the value at `path` (of its key when `key` is set, or when the value is empty),
 * else of the deepest node on the way.
 */
export function locate(
  doc: Document,
  lines: LineCounter,
  path: FieldPath,
  opts: { key?: boolean } = {},
): Position {
  return locator(doc, lines)(path, opts);
}

/**
 * `locate` for many paths in one document: each mapping's keys are indexed the first time a path goes
 * through it, so placing n problems costs time linear in n and the document, not n times a mapping's size.
 */
export function locator(
  doc: Document,
  lines: LineCounter,
): (path: FieldPath, opts?: { key?: boolean }) => Position {
  const index = new Map<YAMLMap, Map<unknown, Pair>>();
  const pairOf = (map: YAMLMap, seg: string | number): Pair | undefined => {
    let keys = index.get(map);
    if (!keys) {
      keys = new Map();
      for (const p of map.items as Pair[]) {
        const k = isScalar(p.key) ? p.key.value : p.key;
        // The first of two equal keys, as a search from the start would find.
        if (!keys.has(k)) keys.set(k, p);
      }
      index.set(map, keys);
    }
    return keys.get(seg);
  };
  return (path, opts = {}) => find(doc, lines, path, opts, pairOf);
}

function find(
  doc: Document,
  lines: LineCounter,
  path: FieldPath,
  opts: { key?: boolean },
  pairOf: (map: YAMLMap, seg: string | number) => Pair | undefined,
): Position {
  let node: unknown = doc.contents;
  let at: Node | undefined = isNode(node) ? node : undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i] as string | number;
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = pairOf(node as YAMLMap, seg);
      if (!pair) break;
      const keyNode = isNode(pair.key) ? pair.key : undefined;
      const valueNode = isNode(pair.value) ? pair.value : undefined;
      if (last && opts.key) {
        at = keyNode ?? at;
        break;
      }
      // An empty value (`port:`) has no range worth pointing at: point at its key.
      at =
        valueNode && valueNode.range && !(isScalar(valueNode) && valueNode.value === null)
          ? valueNode
          : (keyNode ?? at);
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (!isNode(item)) break;
      at = item;
      node = item;
    } else break;
  }
  const offset = at?.range?.[0] ?? 0;
  return lines.linePos(offset);
}

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && 'range' in v;
}
