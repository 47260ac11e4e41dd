package counters

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// maxLine bounds the length of one line the parsers accept. The longest real
// line, the TcpExt header of /proc/net/netstat, is a few kilobytes.
const maxLine = 1 << 20

// lines returns a scanner over r's lines that accepts lines up to maxLine.
func lines(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return sc
}

// ParseSNMP parses the format of /proc/net/snmp and /proc/net/netstat: pairs of
// lines, a header naming the fields of a section and a line of their values,
// both starting with the section name and a colon:
//
//	Udp: InDatagrams NoPorts InErrors ...
//	Udp: 77 0 0 ...
//
// Each value becomes a counter named "Section Field" ("Udp NoPorts").
func ParseSNMP(r io.Reader) (Snapshot, error) {
	snap := Snapshot{}
	sc := lines(r)
	n := 0
	for sc.Scan() {
		n++
		header := sc.Text()
		if strings.TrimSpace(header) == "" {
			continue
		}
		section, names, ok := strings.Cut(header, ":")
		if !ok || !isWord(section) {
			return nil, fmt.Errorf("line %d: %q is not a \"Section: Field ...\" header", n, header)
		}
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("line %d: header of section %s has no line of values after it", n, section)
		}
		n++
		prefix, values, ok := strings.Cut(sc.Text(), ":")
		if !ok || prefix != section {
			return nil, fmt.Errorf("line %d: want the values of section %s, got %q", n, section, sc.Text())
		}
		fields, nums := strings.Fields(names), strings.Fields(values)
		if len(fields) != len(nums) {
			return nil, fmt.Errorf("line %d: section %s names %d fields but has %d values", n, section, len(fields), len(nums))
		}
		for i, f := range fields {
			v, err := parseDecimal(nums[i])
			if err != nil {
				return nil, fmt.Errorf("line %d: %s %s: %w", n, section, f, err)
			}
			snap[section+" "+f] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return snap, nil
}

// ParseSNMP6 parses the format of /proc/net/snmp6: one counter a line, its
// name (protocol and field run together, "Ip6InNoRoutes") and its value.
// The name is split after the protocol's "6" to match the names of
// [ParseSNMP]: "Ip6 InNoRoutes", "Icmp6 OutType1", "UdpLite6 NoPorts". A name
// without a "6" is kept as it is.
func ParseSNMP6(r io.Reader) (Snapshot, error) {
	snap := Snapshot{}
	sc := lines(r)
	n := 0
	for sc.Scan() {
		n++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want a name and a value, got %q", n, sc.Text())
		}
		v, err := parseDecimal(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", n, fields[0], err)
		}
		snap[splitSNMP6(fields[0])] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return snap, nil
}

// splitSNMP6 turns "Ip6InNoRoutes" into "Ip6 InNoRoutes".
func splitSNMP6(name string) string {
	i := strings.IndexByte(name, '6')
	if i <= 0 || i == len(name)-1 {
		return name
	}
	return name[:i+1] + " " + name[i+1:]
}

// devFieldNames maps the column names of /proc/net/dev, per direction, to the
// names the same counters have in /sys/class/net/DEVICE/statistics.
var devFieldNames = [2]map[string]string{
	{ // receive
		"bytes": "rx_bytes", "packets": "rx_packets", "errs": "rx_errors",
		"drop": "rx_dropped", "fifo": "rx_fifo_errors", "frame": "rx_frame_errors",
		"compressed": "rx_compressed", "multicast": "multicast",
	},
	{ // transmit
		"bytes": "tx_bytes", "packets": "tx_packets", "errs": "tx_errors",
		"drop": "tx_dropped", "fifo": "tx_fifo_errors", "colls": "collisions",
		"carrier": "tx_carrier_errors", "compressed": "tx_compressed",
	},
}

// ParseDev parses /proc/net/dev: two header lines, the second naming the
// receive and transmit columns between "|" separators, then one line per
// device. Each value becomes a counter "dev DEVICE FIELD", FIELD named as in
// /sys/class/net/DEVICE/statistics ("dev eth0 rx_dropped", "dev eth0
// tx_errors", "dev eth0 collisions"); a column this package does not know is
// named "rx_" or "tx_" and its header name.
func ParseDev(r io.Reader) (Snapshot, error) {
	sc := lines(r)
	var columns []string
	for n := 1; n <= 2; n++ {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("line %d: missing header line", n)
		}
		if n == 1 {
			continue
		}
		parts := strings.Split(sc.Text(), "|")
		if len(parts) != 3 {
			return nil, fmt.Errorf("line 2: want a header of three |-separated parts (face, receive, transmit), got %q", sc.Text())
		}
		for dir, part := range parts[1:] {
			for _, f := range strings.Fields(part) {
				name, ok := devFieldNames[dir][f]
				if !ok {
					name = [2]string{"rx_", "tx_"}[dir] + f
				}
				columns = append(columns, name)
			}
		}
	}
	snap := Snapshot{}
	n := 2
	for sc.Scan() {
		n++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		dev, values, ok := strings.Cut(sc.Text(), ":")
		dev = strings.TrimSpace(dev)
		if !ok || !isWord(dev) {
			return nil, fmt.Errorf("line %d: want \"DEVICE: values\", got %q", n, sc.Text())
		}
		nums := strings.Fields(values)
		if len(nums) != len(columns) {
			return nil, fmt.Errorf("line %d: device %s has %d values but the header names %d columns", n, dev, len(nums), len(columns))
		}
		for i, c := range columns {
			v, err := strconv.ParseUint(nums[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: dev %s %s: %w", n, dev, c, err)
			}
			snap["dev "+dev+" "+c] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return snap, nil
}

// softnetColumns names the columns of /proc/net/softnet_stat that are
// counters, by position. The others are unused (always 0), the CPU's index,
// or queue lengths at the moment of reading.
var softnetColumns = map[int]string{
	0:  "processed",        // packets taken from the CPU's backlog
	1:  "dropped",          // packets dropped because the backlog was full
	2:  "time_squeeze",     // times net_rx_action stopped with work left (budget or time ran out)
	9:  "received_rps",     // times this CPU was woken to process packets sent by RPS
	10: "flow_limit_count", // packets dropped by the flow limit
}

// ParseSoftnet parses /proc/net/softnet_stat: one line per CPU of hexadecimal
// columns (processed, dropped, time_squeeze, ...). It sums each counter over
// all CPUs into "softnet processed", "softnet dropped", "softnet
// time_squeeze", "softnet received_rps" and "softnet flow_limit_count";
// older kernels print fewer columns, and those missing are left out. These
// counters are the system's, not a namespace's: every namespace shows the
// same.
func ParseSoftnet(r io.Reader) (Snapshot, error) {
	snap := Snapshot{}
	sc := lines(r)
	n := 0
	for sc.Scan() {
		n++
		for i, f := range strings.Fields(sc.Text()) {
			name, ok := softnetColumns[i]
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(f, 16, 32)
			if err != nil {
				return nil, fmt.Errorf("line %d: softnet %s: %w", n, name, err)
			}
			snap["softnet "+name] += v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return snap, nil
}

// ParseStat parses the per-CPU statistics of /proc/net/stat/* (nf_conntrack,
// arp_cache, ndisc_cache): a header naming the columns, then one line per CPU
// of hexadecimal values. Each column, summed over the CPUs, becomes a counter
// named prefix, a space and the column name ("conntrack drop"). The column
// "entries" is the table's current size, printed the same on every line, and
// is taken from the first line rather than summed.
func ParseStat(r io.Reader, prefix string) (Snapshot, error) {
	sc := lines(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("line 1: missing header line")
	}
	columns := strings.Fields(sc.Text())
	snap := Snapshot{}
	n := 1
	for sc.Scan() {
		n++
		nums := strings.Fields(sc.Text())
		if len(nums) == 0 {
			continue
		}
		if len(nums) != len(columns) {
			return nil, fmt.Errorf("line %d: %d values but the header names %d columns", n, len(nums), len(columns))
		}
		for i, c := range columns {
			v, err := strconv.ParseUint(nums[i], 16, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s %s: %w", n, prefix, c, err)
			}
			name := prefix + " " + c
			if c == "entries" {
				if _, seen := snap[name]; !seen {
					snap[name] = v
				}
				continue
			}
			snap[name] += v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return snap, nil
}

// isWord reports whether s can be one word of a counter name: not empty, and
// without white space.
func isWord(s string) bool {
	return s != "" && !strings.ContainsFunc(s, unicode.IsSpace)
}

// parseDecimal parses a counter value, which the kernel prints in decimal and
// unsigned except for a few signed fields (Tcp MaxConn is -1); a negative
// value is returned as its two's complement.
func parseDecimal(s string) (uint64, error) {
	if strings.HasPrefix(s, "-") {
		v, err := strconv.ParseInt(s, 10, 64)
		return uint64(v), err
	}
	return strconv.ParseUint(s, 10, 64)
}
