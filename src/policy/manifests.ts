// Namespaces, Pods and NetworkPolicies from manifests: a directory of files, one file, or
// stdin (`kubectl get netpol,pods,ns -A -o yaml | flatnet policy explain --manifests -`).
// YAML or JSON, several documents per file, `kind: List` (as `kubectl get -o yaml`
// writes) unwrapped. Other kinds are skipped: a directory of real manifests holds
// Services and more.
import { readdirSync, readFileSync, type Stats, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { jsonErrorAt } from '../json-error.js'
import { type Namespace, type NetworkPolicy, type Pod, isolatingStandIn, parseNamespace, parseNetworkPolicy, parsePod, PolicyObjectError } from './objects.js'

/** errors: one line per object refused (file, object and field); the rest is loaded, and a refused NetworkPolicy isolates what it would select. */
export interface Manifests { namespaces: Namespace[], pods: Pod[], policies: NetworkPolicy[], errors: string[] }

/** path: a directory (its .yaml, .yml and .json files), a file, or "-" for stdin. */
export function loadManifests (path: string, stdin = (): string => readFileSync(0, 'utf8')): Manifests {
  const out: Manifests = { namespaces: [], pods: [], policies: [], errors: [] }
  if (path === '-') {
    addText(out, stdin(), '(stdin)')
  } else if (pathStat(path).isDirectory()) {
    const files = readdirSync(path).filter((f) => /\.(ya?ml|json)$/.test(f)).sort()
    if (files.length === 0) throw new Error(`${path}: no .yaml, .yml or .json files; give the directory holding them, a file, or - for stdin`)
    for (const f of files) {
      const file = join(path, f)
      if (statSync(file).isFile()) addText(out, readFileSync(file, 'utf8'), file)
    }
  } else {
    addText(out, readFileSync(path, 'utf8'), path)
  }
  // A namespace only named by its objects still exists, with only the name label.
  for (const name of new Set([...out.pods, ...out.policies].map((o) => o.namespace))) {
    if (!out.namespaces.some((n) => n.name === name)) out.namespaces.push(parseNamespace({ metadata: { name } }))
  }
  return out
}

function pathStat (path: string): Stats {
  try {
    return statSync(path)
  } catch (err) {
    throw new Error(`${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}; give a directory of manifests, a file, or - for stdin`)
  }
}

/** One file's or stdin's documents. JSON (kubectl -o json) goes to JSON.parse: far faster than the YAML parser on a cluster's worth of objects. */
function addText (out: Manifests, text: string, name: string): void {
  if (name.endsWith('.json') || /^\s*[{[]/.test(text)) {
    try {
      add(out, JSON.parse(text), name)
      return
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err
      if (name.endsWith('.json')) {
        const at = jsonErrorAt(text, err)
        out.errors.push(`${name}:${at.line}:${at.column}: ${at.message}`)
        return
      }
      // Not JSON after all: YAML flow style starts with a brace too.
    }
  }
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      out.errors.push(`${name}: ${doc.errors[0].message.split('\n')[0]}`) // its first line says where; the rest quotes the text
      continue
    }
    add(out, doc.toJS(), name)
  }
}

function add (out: Manifests, obj: unknown, path: string): void {
  if (obj === null || typeof obj !== 'object') return
  const o = obj as { kind?: unknown, items?: unknown }
  try {
    if (o.kind === 'List' || (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items))) {
      for (const item of (o.items as unknown[]) ?? []) add(out, item, path)
    } else if (o.kind === 'Namespace') out.namespaces.push(parseNamespace(obj))
    else if (o.kind === 'Pod') out.pods.push(parsePod(obj))
    else if (o.kind === 'NetworkPolicy') out.policies.push(parseNetworkPolicy(obj))
  } catch (err) {
    if (!(err instanceof PolicyObjectError)) throw err
    out.errors.push(`${path}: ${err.message}`)
    // As from the API server: a policy that cannot be read isolates what it would select.
    const standIn = o.kind === 'NetworkPolicy' ? isolatingStandIn(obj) : undefined
    if (standIn) out.policies.push(standIn)
  }
}
