// `ioas show FILE.trace --svg OUT [--ioas NAME] [--engine E]`: replays a trace
// and draws the final state of one IOAS as an SVG picture: the allowed
// ranges, the reserved ranges of each owner, the areas (by permission) and
// the free holes, on one axis.
//
// A 64-bit space with 4 KiB areas in it cannot be drawn to scale, so the
// axis is segmented: it is cut at every boundary of everything drawn, and
// each segment is as wide as log2 of its size (plus a minimum), so a 4 KiB
// area and a 2^63-byte hole are both visible and their order is exact. Every
// boundary is labelled in hex on the axis; every shape has a <title> with its
// exact range for a viewer's tooltip.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "cli.hpp"
#include "commands.hpp"
#include "show.hpp"
#include "trace.hpp"

namespace ioas::cli {
namespace {

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

// The segmented axis: boundaries b_0 = 0 < b_1 < ... and, for each segment
// [b_i, b_{i+1}), its x position and width in pixels.
class Axis {
 public:
  Axis(const std::vector<Range>& ranges, double x0, double width) : x0_(x0) {
    std::set<u64> cuts{0};
    for (const auto& r : ranges) {
      cuts.insert(r.start);
      if (r.last != kMaxIova) cuts.insert(r.last + 1);
    }
    starts_.assign(cuts.begin(), cuts.end());
    std::vector<double> w;
    for (std::size_t i = 0; i < starts_.size(); ++i) {
      const u64 last = i + 1 < starts_.size() ? starts_[i + 1] - 1 : kMaxIova;
      const double len = static_cast<double>(last - starts_[i]) + 1.0;
      w.push_back(6.0 + std::log2(len));
    }
    double total = 0;
    for (double x : w) total += x;
    double at = x0;
    for (double x : w) {
      xs_.push_back(at);
      at += x * width / total;
    }
    xs_.push_back(at);
  }
  // x of the first byte of boundary-aligned IOVA `v` (v is a segment start)
  // or of the end of the space (for last == 2^64-1).
  double x_of_start(u64 v) const {
    auto it = std::lower_bound(starts_.begin(), starts_.end(), v);
    return xs_[static_cast<std::size_t>(it - starts_.begin())];
  }
  double x_after(u64 last) const {
    if (last == kMaxIova) return xs_.back();
    return x_of_start(last + 1);
  }
  const std::vector<u64>& boundaries() const { return starts_; }
  double end() const { return xs_.back(); }

 private:
  double x0_;
  std::vector<u64> starts_;
  std::vector<double> xs_;
};

struct Lane {
  std::string label;
  std::string color;
  std::vector<std::pair<Range, std::string>> shapes;  // range, tooltip
};

}  // namespace

std::string render_svg(const IoasState& s) {
  std::vector<Lane> lanes;
  std::vector<Range> all;
  if (!s.allowed.empty()) {
    Lane l{"allowed", "#9ecae1", {}};
    for (const auto& r : s.allowed) l.shapes.push_back({r, "allowed " + to_string(r)});
    lanes.push_back(std::move(l));
  }
  std::map<Owner, std::vector<Range>> by_owner;
  for (const auto& r : s.reserved) by_owner[r.owner].push_back(r.range);
  static const char* kResvColors[] = {"#fdae6b", "#fd8d3c", "#e6550d", "#a63603", "#fdd0a2"};
  std::size_t oi = 0;
  for (const auto& [owner, rs] : by_owner) {
    Lane l{"reserved: " + to_string(owner), kResvColors[oi++ % 5], {}};
    for (const auto& r : rs) l.shapes.push_back({r, "reserved " + to_string(r) + " (" + to_string(owner) + ")"});
    lanes.push_back(std::move(l));
  }
  Lane areas{"areas (blue rw, green r)", "", {}};
  for (const auto& a : s.areas)
    areas.shapes.push_back({a.iova, "area " + to_string(a.iova) + " " + to_string(a.prot) + " " + a.source + "+" +
                                        hex(a.offset) + (a.pins ? " pinned" : "")});
  lanes.push_back(std::move(areas));
  std::vector<Range> blocked;
  for (const auto& r : s.reserved) blocked.push_back(r.range);
  for (const auto& a : s.areas) blocked.push_back(a.iova);
  Lane holes{"free", "#d9d9d9", {}};
  for (const auto& h : complement(blocked)) holes.shapes.push_back({h, "free " + to_string(h)});
  lanes.push_back(std::move(holes));
  for (const auto& l : lanes)
    for (const auto& [r, t] : l.shapes) all.push_back(r);

  const double label_w = 230, plot_w = 900, lane_h = 26, top = 48;
  const Axis axis(all, label_w, plot_w);
  const double axis_y = top + lane_h * static_cast<double>(lanes.size()) + 8;
  const double height = axis_y + 150;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << label_w + plot_w + 140 << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">IOAS " << xml_escape(s.name) << ": "
    << s.areas.size() << " areas, " << s.reserved.size() << " reserved ranges, iova_alignment " << hex(s.iova_alignment)
    << "</text>\n";
  o << "<text x=\"10\" y=\"38\" fill=\"#555\">axis cut at every boundary; each segment's width grows with log2 "
       "of its size (not to scale)</text>\n";
  for (std::size_t i = 0; i < lanes.size(); ++i) {
    const double y = top + lane_h * static_cast<double>(i);
    o << "<text x=\"10\" y=\"" << y + 16 << "\">" << xml_escape(lanes[i].label) << "</text>\n";
    o << "<line x1=\"" << label_w << "\" y1=\"" << y + lane_h - 2 << "\" x2=\"" << axis.end() << "\" y2=\""
      << y + lane_h - 2 << "\" stroke=\"#eee\"/>\n";
    for (const auto& [r, tip] : lanes[i].shapes) {
      std::string color = lanes[i].color;
      if (color.empty()) color = tip.find(" rw ") != std::string::npos ? "#3182bd" : "#31a354";
      const double x1 = axis.x_of_start(r.start), x2 = axis.x_after(r.last);
      o << "<rect class=\"shape\" x=\"" << x1 << "\" y=\"" << y + 3 << "\" width=\"" << std::max(1.0, x2 - x1 - 0.5)
        << "\" height=\"" << lane_h - 8 << "\" fill=\"" << color << "\" stroke=\"#333\" stroke-width=\"0.5\"><title>"
        << xml_escape(tip) << "</title></rect>\n";
    }
  }
  o << "<line x1=\"" << label_w << "\" y1=\"" << axis_y << "\" x2=\"" << axis.end() << "\" y2=\"" << axis_y
    << "\" stroke=\"black\"/>\n";
  double last_label = -1e9;
  for (u64 b : axis.boundaries()) {
    const double x = axis.x_of_start(b);
    o << "<line x1=\"" << x << "\" y1=\"" << axis_y << "\" x2=\"" << x << "\" y2=\"" << axis_y + 5
      << "\" stroke=\"black\"/>\n";
    if (x - last_label < 13) continue;  // too close to the previous label
    last_label = x;
    o << "<text class=\"tick\" transform=\"translate(" << x + 3 << "," << axis_y + 10 << ") rotate(60)\">" << hex(b)
      << "</text>\n";
  }
  o << "<text class=\"tick\" transform=\"translate(" << axis.end() << "," << axis_y + 10
    << ") rotate(60)\">0xffffffffffffffff</text>\n";
  o << "</svg>\n";
  return o.str();
}

int show_picture(const CommandLine& cl, std::ostream& out, std::ostream& err,
                 const trace::EngineRegistry& registry) {
  if (cl.files.size() != 1 || cl.svg.empty()) {
    err << "ioas show: "
        << (cl.files.empty() ? "no trace file given" : cl.files.size() > 1 ? "one trace file at a time" : "no --svg OUT given")
        << " (usage: ioas show FILE.trace --svg OUT [--ioas NAME])\n";
    return kExitUsage;
  }
  const std::string& file = cl.files[0];
  const std::string& svg = cl.svg;
  const std::string& ioas = cl.ioas;
  const std::string engine = cl.engine_given ? cl.engine : "model";
  auto engines = registry.select(engine);
  if (!engines.ok() || engines->size() != 1) {
    err << "ioas show: --engine takes model or impl"
        << (engines.ok() ? "" : " (" + engines.error().message + ")") << "\n";
    return 2;
  }
  auto t = trace::read_trace_file(file);
  if (!t.ok()) {
    err << (t.code() == EINVAL ? "malformed trace: " : "ioas show: ") << t.error().message << "\n";
    return 2;
  }
  std::optional<IoasState> state;
  std::string why;
  auto report = trace::replay(*t, *engines, {}, [&](const std::string&, const Engine& e) {
    auto s = e.snapshot(ioas);
    if (s.ok()) state = *s;
    else why = s.error().message;
  });
  if (!report.ok()) {
    err << "ioas show: " << report.error().message << "\n";
    return 2;
  }
  if (!state) {
    err << "ioas show: " << file << ": " << why << "\n";
    return 2;
  }
  std::ofstream f(svg);
  f << render_svg(*state);
  if (!f) {
    err << "ioas show: cannot write " << svg << "\n";
    return 2;
  }
  out << "wrote " << svg << " (IOAS " << ioas << ": " << state->areas.size() << " areas, " << state->reserved.size()
      << " reserved ranges)\n";
  return 0;
}

}  // namespace ioas::cli
