// The CapEff reader that tells "no CAP_BPF" from "seccomp refused bpf() despite CAP_BPF".
import t from 'tap'
import { CAP_BPF, hasCapability } from '../../src/capabilities.js'

const status = (capEff: string): string => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t${capEff}\n`

t.ok(hasCapability(CAP_BPF, status('0000008000003000')), 'NET_ADMIN, NET_RAW, BPF (the DaemonSet\'s): holds CAP_BPF')
t.notOk(hasCapability(CAP_BPF, status('0000000000003000')), 'NET_ADMIN, NET_RAW: no CAP_BPF')
t.ok(hasCapability(12, status('0000000000003000')), 'bit 12 (NET_ADMIN) read from the low word')
t.notOk(hasCapability(CAP_BPF, 'Name:\tnode\n'), 'no CapEff line: false, not a throw')
