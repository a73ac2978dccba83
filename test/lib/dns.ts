// A DNS server for a pod (dnsmasq answering one fixed record, nothing forwarded) and a
// query from any namespace with Node's own resolver, for a cluster-DNS-like Service.
import { join } from 'node:path'
import type { Namespace } from '../../src/lab/netns.js'

/** dnsmasq in the foreground on `address`:53 only, answering `domain` (and names under it) with `answer`. */
export function startDnsmasq (ns: Namespace, address: string, domain: string, answer: string, dir: string): void {
  ns.spawn('dnsmasq', [
    '--keep-in-foreground', '--log-facility=-',
    '--conf-file=/dev/null', // not /etc/dnsmasq.conf, nor /etc/dnsmasq.d
    '--no-resolv', '--no-hosts', // no upstream servers, no /etc/hosts: only the record below
    `--listen-address=${address}`, '--bind-interfaces',
    `--address=/${domain}/${answer}`,
    `--pid-file=${join(dir, `dnsmasq-${ns.name}.pid`)}`, // not /run/dnsmasq.pid, which a system dnsmasq would own
  ], join(dir, `dnsmasq-${ns.name}.log`))
}

/** The A records `server` gives for `name`, asked from inside `from` (c-ares, as Node resolves). */
export async function resolveFrom (from: Namespace, server: string, name: string): Promise<string[]> {
  const script = `const r = new (require('dns').promises.Resolver)({ timeout: 2000, tries: 1 }); r.setServers(['${server}'])
    r.resolve4('${name}').then((a) => process.stdout.write(a.join(' ')), (e) => { process.stderr.write(String(e.code)); process.exit(1) })`
  for (let attempt = 0; ; attempt++) {
    try {
      return (await from.execAsync(process.execPath, ['-e', script], 15_000)).trim().split(' ')
    } catch (err) {
      if (attempt >= 20) throw err // dnsmasq may still be starting (ECONNREFUSED)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}
