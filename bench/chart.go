package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

var toolColors = map[string]string{"envd": "#2b8a3e", "envd-dev": "#0c8599", "envd-container": "#74b816", "docker-legacy": "#868e96", "docker-buildkit": "#1971c2"}

// chart draws the wall times as an SVG: one panel per workload, a group of bars per scenario, one bar per tool
// (the median), with a dark tick at the minimum and the median written above.
func (b *bench) chart() string {
	const (
		width, panelH            = 960.0, 330.0
		left, right, padTop, bot = 60.0, 20.0, 60.0, 55.0
	)
	height := 40 + panelH*float64(len(b.works))
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	// Legend.
	x := left
	for _, t := range b.tools {
		fmt.Fprintf(&s, `<rect x="%.0f" y="14" width="14" height="14" fill="%s"/><text x="%.0f" y="26">%s</text>`+"\n",
			x, toolColors[t.name()], x+20, html.EscapeString(toolTitles[t.name()]))
		x += 40 + 7.5*float64(len(toolTitles[t.name()]))
	}
	fmt.Fprintf(&s, `<text x="%.0f" y="26" fill="#555">bar: median, tick: min (seconds)</text>`+"\n", x)

	for i, w := range b.works {
		y0 := 40 + panelH*float64(i) // panel top
		plotTop, plotBottom := y0+padTop, y0+panelH-bot
		plotW := width - left - right
		maxV := 0.0
		for _, sc := range b.o.scenarios {
			for _, t := range b.tools {
				if c, ok := b.cell(w.name, t.name(), sc); ok {
					maxV = max(maxV, c.median)
				}
			}
		}
		step := niceStep(maxV / 5)
		yMax := max(step*math.Ceil(maxV*1.08/step), step)
		yOf := func(v float64) float64 { return plotBottom - v/yMax*(plotBottom-plotTop) }

		fmt.Fprintf(&s, `<text x="%.0f" y="%.0f" font-size="14" font-weight="bold">%s</text>`+"\n", left, y0+34, html.EscapeString(w.title))
		for k := 0.0; k*step <= yMax+step/2; k++ {
			v := k * step
			y := yOf(v)
			fmt.Fprintf(&s, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#e9ecef"/>`, left, width-right, y, y)
			fmt.Fprintf(&s, `<text x="%.0f" y="%.1f" text-anchor="end" fill="#555">%g</text>`+"\n", left-6, y+4, v)
		}
		fmt.Fprintf(&s, `<text x="14" y="%.0f" transform="rotate(-90 14 %.0f)" text-anchor="middle" fill="#555">seconds</text>`+"\n",
			(plotTop+plotBottom)/2, (plotTop+plotBottom)/2)

		groupW := plotW / float64(len(b.o.scenarios))
		barW := math.Min(36, groupW*0.8/float64(len(b.tools)))
		for gi, sc := range b.o.scenarios {
			gx := left + groupW*float64(gi) + (groupW-barW*float64(len(b.tools)))/2
			for ti, t := range b.tools {
				c, ok := b.cell(w.name, t.name(), sc)
				if !ok {
					continue
				}
				bx := gx + barW*float64(ti)
				fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, bx, yOf(c.median), barW-2,
					plotBottom-yOf(c.median), toolColors[t.name()])
				fmt.Fprintf(&s, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#212529" stroke-width="2"/>`, bx, bx+barW-2, yOf(c.min), yOf(c.min))
				fmt.Fprintf(&s, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", bx+(barW-2)/2, yOf(c.median)-4, secs(c.median))
			}
			fmt.Fprintf(&s, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", left+groupW*(float64(gi)+0.5), plotBottom+18,
				html.EscapeString(scenarioTitle(sc)))
		}
		fmt.Fprintf(&s, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#343a40"/>`+"\n", left, width-right, plotBottom, plotBottom)
	}
	s.WriteString("</svg>\n")
	return s.String()
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
