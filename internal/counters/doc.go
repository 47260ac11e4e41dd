// Package counters reads the kernel's network statistics of a namespace
// (/proc/net/snmp, /proc/net/netstat, /proc/net/snmp6, /proc/net/dev,
// softnet_stat) so a diagnosis can cite what moved while a packet was traced.
//
// A [Snapshot] maps counter names to values. Names are "Section Field" as the
// kernel spells them ("Udp NoPorts", "TcpExt TCPBacklogDrop", "Ip6 InNoRoutes"),
// "dev DEVICE FIELD" for devices ("dev eth0 rx_dropped", with the field names of
// /sys/class/net/DEVICE/statistics), "softnet FIELD" for the per-CPU receive
// queues summed over all CPUs, and "conntrack FIELD", "arp FIELD", "ndisc FIELD"
// for /proc/net/stat/{nf_conntrack,arp_cache,ndisc_cache}. All are the
// namespace's own except the softnet, arp and ndisc counters, which every
// namespace shows the same, for the whole system.
//
// The usual use: [Read] before and after tracing, [Diff] the two, and print the
// [Notable] changes with their [Explain] text:
//
//	before, err := counters.Read("/run/netns/blue")
//	...
//	after, err := counters.Read("/run/netns/blue")
//	for _, c := range counters.Notable(counters.Diff(before, after)) {
//		fmt.Printf("%s: %s\n", c, counters.Explain(c.Name)) // Udp NoPorts +3: UDP datagrams to a port with no socket ...
//	}
//
// The parsers (ParseSNMP, ParseSNMP6, ParseDev, ParseSoftnet, ParseStat) do no
// I/O, so they can be tested on captured files and fuzzed.
package counters
