package nftrace

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skbtrail/skbtrail/internal/netns"
)

// RuleText returns the rule with the given handle as `nft -a list` prints
// it, without the trailing "# handle N" and with counter values left out
// ("counter" instead of "counter packets 3 bytes 252"), or "" when the nft
// binary is not installed or does not know the rule. It lists the whole
// chain once, by running `nft -a list chain FAMILY TABLE CHAIN` in the
// Tracer's namespace, and caches the result; a handle the cache lacks (a
// rule added since) lists the chain again, at most once a second.
//
// Reading nft's output is deliberate: turning a rule's expressions back into
// text is nft's own work (its rule printer, with its knowledge of every
// expression, set and iptables-nft's xt matches); github.com/google/nftables
// decodes expressions but cannot render them. The text is for people, never
// parsed further, so a change in nft's format costs nothing but looks.
func (t *Tracer) RuleText(family, table, chain string, handle uint64) string {
	return t.rules.text(t.netns, family, table, chain, handle)
}

type chainKey struct{ family, table, chain string }

type chainRules struct {
	rules  map[uint64]string
	listed time.Time
}

// ruleCache caches nft listings per chain. The zero ruleCache is ready.
type ruleCache struct {
	mu      sync.Mutex
	chains  map[chainKey]*chainRules
	nft     string // path of nft; "" not looked up yet, "-" not installed
	relist  time.Duration
	timeout time.Duration
}

func (c *ruleCache) text(netns, family, table, chain string, handle uint64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nft == "" {
		c.nft = "-"
		if p, err := exec.LookPath("nft"); err == nil {
			c.nft = p
		}
		c.chains = make(map[chainKey]*chainRules)
		c.relist, c.timeout = time.Second, 3*time.Second
	}
	if c.nft == "-" {
		return ""
	}
	k := chainKey{family, table, chain}
	cr := c.chains[k]
	if cr != nil {
		if s, ok := cr.rules[handle]; ok || time.Since(cr.listed) < c.relist {
			return s
		}
	}
	rules, err := listChain(c.nft, netns, family, table, chain, c.timeout)
	if err != nil {
		rules = nil // remember the failure for relist, too
	}
	c.chains[k] = &chainRules{rules: rules, listed: time.Now()}
	return rules[handle]
}

// listChain runs `nft -a list chain` in the namespace at ns. Starting
// the process from a thread switched into the namespace starts it there
// (a child inherits the namespaces of the thread that forks it), which
// `ip netns exec` cannot do for a namespace given as a path.
func listChain(nft, ns, family, table, chain string, timeout time.Duration) (map[uint64]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, nft, "-a", "list", "chain", family, quote(table), quote(chain))
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := netns.Do(ns, cmd.Start); err != nil {
		return nil, err
	}
	if err := cmd.Wait(); err != nil {
		return nil, err
	}
	return parseListing(out.Bytes()), nil
}

// quote quotes a table or chain name for nft's parser (nft joins its
// arguments into one command line), unless it is a plain identifier.
func quote(name string) string {
	for _, r := range name {
		if !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return `"` + name + `"`
		}
	}
	return name
}

var counterValues = regexp.MustCompile(`\bcounter packets \d+ bytes \d+`)

// parseListing maps rule handles to rule text in the output of `nft -a
// list chain`: rules are the lines ending in "# handle N" that do not open
// a block (the table and chain lines do).
func parseListing(b []byte) map[uint64]string {
	rules := make(map[uint64]string)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		i := strings.LastIndex(line, " # handle ")
		if i < 0 {
			continue
		}
		h, err := strconv.ParseUint(line[i+len(" # handle "):], 10, 64)
		text := strings.TrimSpace(line[:i])
		if err != nil || text == "" || strings.HasSuffix(text, "{") {
			continue
		}
		rules[h] = counterValues.ReplaceAllString(text, "counter")
	}
	return rules
}
