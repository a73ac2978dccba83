// Services through the overlay: kube-proxy runs beside every CNI, so its iptables rules
// (iptables-nft, in node n1's namespace; test/lib/kube-proxy.ts) must work with flatnet's
// TUN and its own NAT table (ipMasq on, the default). Every endpoint is a pod on another
// node, so each DNATed connection crosses the overlay.
import t from 'tap'
import { join } from 'node:path'
import { CLUSTER_CIDR } from '../../src/lab/cluster.js'
import { resolveFrom, startDnsmasq } from '../lib/dns.js'
import { ECHO_PORT, seenAs, startEcho } from '../../src/lab/traffic.js'
import { installKubeProxy, type Service } from '../lib/kube-proxy.js'
import { withCluster } from '../lib/lab.js'

const OUTSIDE = '192.168.77.200' // on the underlay subnet, in a namespace: never a real host
const DOMAIN = 'svc.test'
const ANSWER = '10.96.0.99'

t.test('kube-proxy Services on a flatnet node, endpoints across the overlay', async (t) => {
  const flatnet = { kind: 'flatnet' as const }
  const cluster = await withCluster(t, { tag: 'svc', nodes: [flatnet, flatnet, flatnet], podsPerNode: 2 }, ['iptables', 'dnsmasq', 'nft'])
  if (!cluster) return
  const [n1, n2, n3] = cluster.nodes
  const [client] = n1.pods
  const [web, dns] = n2.pods
  const [nodePortBackend] = n3.pods
  startEcho(web.ns)
  startEcho(nodePortBackend.ns)
  startDnsmasq(dns.ns, dns.ip, DOMAIN, ANSWER, cluster.dir)
  const outside = cluster.attachToUnderlay('out', OUTSIDE)

  // ClusterIPs from the default --service-cluster-ip-range 10.96.0.0/12.
  const services: Record<string, Service> = {
    web: { name: 'default/web:http', protocol: 'tcp', clusterIP: '10.96.0.20', port: 80, endpoint: `${web.ip}:${ECHO_PORT}` },
    dns: { name: 'kube-system/kube-dns:dns', protocol: 'udp', clusterIP: '10.96.0.10', port: 53, endpoint: `${dns.ip}:53` },
    nodePort: { name: 'default/web-np:http', protocol: 'tcp', clusterIP: '10.96.0.30', port: 80, nodePort: 30080, endpoint: `${nodePortBackend.ip}:${ECHO_PORT}` },
  }
  t.match(n1.ns.exec('iptables', '-V'), /nf_tables/, 'iptables is iptables-nft (Debian 12\'s default backend)')
  installKubeProxy(n1.ns, Object.values(services), CLUSTER_CIDR, join(cluster.dir, 'n1.iptables'))

  // Pod -> ClusterIP: DNAT on n1, across the overlay, un-DNAT on the way back; not
  // marked (the source is inside --cluster-cidr), so the backend sees the pod.
  t.equal(await seenAs(client.ns, services.web.clusterIP, services.web.port), client.ip,
    `n1 pod -> ClusterIP ${services.web.clusterIP}:80 (TCP, endpoint on n2): answered, the backend sees the pod's own IP`)
  // The resolver only takes a reply from the server it asked, so the answer also shows the un-DNAT.
  t.same(await resolveFrom(client.ns, services.dns.clusterIP, `web.${DOMAIN}`), [ANSWER],
    `n1 pod -> ClusterIP ${services.dns.clusterIP}:53 (UDP, dnsmasq on n2): web.${DOMAIN} is ${ANSWER}`)
  // Node -> pod (kubelet's probes): no Service, no masquerade. Routing picks the source
  // on the cluster route, the TUN's address (the pod CIDR's .0, as flannel.1 holds);
  // flatnet's ipMasq leaves it, being inside the pod CIDR.
  const overlayIP = n1.podCIDR.replace('/24', '')
  t.equal(await seenAs(n1.ns, nodePortBackend.ip), overlayIP,
    `n1 itself -> n3 pod: reached, the pod sees n1's overlay address ${overlayIP}`)
  // NodePort from outside the pod network: KUBE-EXT marks it (externalTrafficPolicy
  // Cluster), KUBE-POSTROUTING masquerades it to the address of the interface it leaves
  // by, the TUN's; unmasqueraded, n3's reply to the outside host would bypass n1's conntrack.
  t.equal(await seenAs(outside, n1.underlayIP, 30080), overlayIP,
    `${OUTSIDE} -> n1 ${n1.underlayIP}:30080 (NodePort, endpoint on n3): answered, masqueraded to n1's ${overlayIP}`)
})
