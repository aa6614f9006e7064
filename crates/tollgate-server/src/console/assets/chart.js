// A small bar chart of usage per day as inline SVG: one bar a day, the day under it, the
// count over it, and a text summary for screen readers. Colours come from console.css.

import { s, uid } from "./dom.js";

const BAR = 28;
const GAP = 14;
const TOP = 22;
const PLOT = 110;
const BOTTOM = 22;

// `days`: [{day: "YYYY-MM-DD", used: n}], oldest first. `title`: what is counted.
export function usageChart(days, title) {
  const width = days.length * (BAR + GAP) + GAP;
  const height = TOP + PLOT + BOTTOM;
  const max = Math.max(1, ...days.map((d) => d.used));
  const titleId = uid("chart-title");
  const summary = days.map((d) => `${d.day}: ${d.used}`).join(", ");
  const svg = s(
    "svg",
    {
      class: "chart",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-labelledby": titleId,
      preserveAspectRatio: "xMinYMin meet",
    },
    s("title", { id: titleId, text: `${title}. ${summary}` }),
    s("line", { class: "axis", x1: 0, x2: width, y1: TOP + PLOT + 0.5, y2: TOP + PLOT + 0.5 }),
  );
  days.forEach((d, i) => {
    const x = GAP + i * (BAR + GAP);
    const barHeight = d.used > 0 ? Math.max(2, Math.round((d.used / max) * PLOT)) : 0;
    const y = TOP + PLOT - barHeight;
    svg.append(
      s(
        "g",
        { class: "day" },
        s("title", { text: `${d.day}: ${d.used}` }),
        s("rect", { class: "bar", x, y, width: BAR, height: barHeight }),
        s("text", { class: "value", x: x + BAR / 2, y: y - 5, "text-anchor": "middle", text: d.used }),
        s("text", {
          class: "label",
          x: x + BAR / 2,
          y: TOP + PLOT + 16,
          "text-anchor": "middle",
          text: d.day.slice(5),
        }),
      ),
    );
  });
  return svg;
}
