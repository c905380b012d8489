// promcheck validates Prometheus rule files and PromQL expressions with Prometheus's own parsers
// (model/rulefmt and promql/parser), as `promtool check rules` does, without building promtool.
//
//	promcheck rules FILE...      rule files: YAML shape, durations, templates, every expr parses
//	promcheck exprs < FILE       one PromQL expression per line (Grafana's $__rate_interval allowed)
package main

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: promcheck rules FILE... | promcheck exprs < FILE")
		os.Exit(2)
	}
	failed := false
	switch os.Args[1] {
	case "rules":
		for _, path := range os.Args[2:] {
			groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.Default())
			for _, err := range errs {
				fmt.Printf("%s: %v\n", path, err)
				failed = true
			}
			if groups != nil {
				n := 0
				for _, g := range groups.Groups {
					n += len(g.Rules)
				}
				fmt.Printf("%s: %d groups, %d rules\n", path, len(groups.Groups), n)
			}
		}
	case "exprs":
		scanner := bufio.NewScanner(os.Stdin)
		scanner.Buffer(make([]byte, 1<<20), 1<<20)
		p := parser.NewParser(parser.Options{})
		for scanner.Scan() {
			expr := strings.TrimSpace(scanner.Text())
			if expr == "" {
				continue
			}
			// Grafana substitutes these before Prometheus sees the query.
			expr = strings.ReplaceAll(expr, "$__rate_interval", "1m")
			expr = strings.ReplaceAll(expr, "$__interval", "1m")
			if _, err := p.ParseExpr(expr); err != nil {
				fmt.Printf("%s: %v\n", scanner.Text(), err)
				failed = true
			}
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
