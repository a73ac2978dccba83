// Namespaces, Pods and NetworkPolicies from manifest files: YAML or JSON, several
// documents per file, `kind: List` (as `kubectl get -o yaml` writes) unwrapped.
// Other kinds are skipped: a directory of real manifests holds Services and more.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { type Namespace, type NetworkPolicy, type Pod, isolatingStandIn, parseNamespace, parseNetworkPolicy, parsePod, PolicyObjectError } from './objects.js'

/** errors: one line per object refused (file, object and field); the rest is loaded, and a refused NetworkPolicy isolates what it would select. */
export interface Manifests { namespaces: Namespace[], pods: Pod[], policies: NetworkPolicy[], errors: string[] }

export function loadManifests (dir: string): Manifests {
  const out: Manifests = { namespaces: [], pods: [], policies: [], errors: [] }
  const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort()
  if (files.length === 0) throw new Error(`${dir}: no .yaml, .yml or .json files; point --manifests at the directory holding them`)
  for (const f of files) {
    const path = join(dir, f)
    if (!statSync(path).isFile()) continue
    const text = readFileSync(path, 'utf8')
    if (f.endsWith('.json')) { // JSON.parse: far faster than the YAML parser on a cluster's worth of objects
      try {
        add(out, JSON.parse(text), path)
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err
        out.errors.push(`${path}: ${err.message}`)
      }
      continue
    }
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) {
        out.errors.push(`${path}: ${doc.errors[0].message}`)
        continue
      }
      add(out, doc.toJS(), path)
    }
  }
  // A namespace only named by its objects still exists, with only the name label.
  for (const name of new Set([...out.pods, ...out.policies].map((o) => o.namespace))) {
    if (!out.namespaces.some((n) => n.name === name)) out.namespaces.push(parseNamespace({ metadata: { name } }))
  }
  return out
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
