// Command soakflood sends UDP datagrams at a steady rate to one or more
// ports of an address, for bench/soak. Run it inside the sending network
// namespace (ip netns exec).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	dst := flag.String("dst", "", "destination address (in 198.18.0.0/15 or fd00::/8 only)")
	ports := flag.String("ports", "9", "destination ports, comma-separated: one flow each")
	rate := flag.Int("rate", 5000, "datagrams per second per flow")
	dur := flag.Duration("duration", 10*time.Minute, "how long")
	flag.Parse()
	addr, err := netip.ParseAddr(*dst)
	if err != nil || !netip.MustParsePrefix("198.18.0.0/15").Contains(addr) && !netip.MustParsePrefix("fd00::/8").Contains(addr) {
		fmt.Fprintf(os.Stderr, "soakflood: -dst %q: give an address in 198.18.0.0/15 or fd00::/8\n", *dst)
		os.Exit(2)
	}
	var conns []*net.UDPConn
	for _, p := range strings.Split(*ports, ",") {
		port, err := strconv.Atoi(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "soakflood: port %q: %v\n", p, err)
			os.Exit(2)
		}
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
		if err != nil {
			fmt.Fprintf(os.Stderr, "soakflood: %v\n", err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	payload := make([]byte, 64)
	// Send in ticks of 10ms: rate/100 datagrams per flow per tick.
	per := max(1, *rate/100)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(*dur)
	var sent, failed uint64
	for time.Now().Before(end) {
		<-tick.C
		for _, c := range conns {
			for i := 0; i < per; i++ {
				// A closed port answers with ICMP: writes may fail with
				// ECONNREFUSED; that is expected.
				if _, err := c.Write(payload); err != nil {
					failed++
				} else {
					sent++
				}
			}
		}
	}
	fmt.Printf("soakflood: %d datagrams sent, %d writes refused, over %s\n", sent, failed, *dur)
}
