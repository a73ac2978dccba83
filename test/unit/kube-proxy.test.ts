// The services test's kube-proxy rules carry kube-proxy's own chain names: these two
// are the ones every cluster has (kube-dns's and the API server's Service), as
// `iptables-save` shows them on a kube-proxy node.
import t from 'tap'
import { kubeProxyRules, svcChain, type Service } from '../lib/kube-proxy.js'

const dns: Service = { name: 'kube-system/kube-dns:dns', protocol: 'udp', clusterIP: '10.96.0.10', port: 53, endpoint: '10.244.2.11:53' }

t.test('KUBE-SVC- chain names are kube-proxy\'s', async (t) => {
  t.equal(svcChain(dns), 'KUBE-SVC-TCOU7JCQXEZGVUNU', 'kube-system/kube-dns:dns udp')
  t.equal(svcChain({ ...dns, name: 'default/kubernetes:https', protocol: 'tcp' }), 'KUBE-SVC-NPX46M4PTMTKRN6Y', 'default/kubernetes:https tcp')
})

t.test('the NodePort jump is the last rule of KUBE-SERVICES', async (t) => {
  const rules = kubeProxyRules([dns, { ...dns, name: 'default/web:http', protocol: 'tcp', nodePort: 30080 }], '10.244.0.0/16').split('\n')
  const services = rules.filter((l) => l.startsWith('-A KUBE-SERVICES '))
  t.equal(services.length, 3, 'one rule per ClusterIP, then the NodePort jump')
  t.match(services.at(-1), /-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS$/)
})
