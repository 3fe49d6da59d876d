// The SVG writer (plot/svg.hpp, plot/charts.hpp), the CSV writer and the training curves: structure of
// the output, tick choice, escaping, NaN handling, errors. Rendering is checked by the ctest tests
// render_svg_* (scripts/render-svgs.sh), which convert the SVGs to PNG with rsvg-convert.
#include <doctest/doctest.h>

#include "test_helpers.hpp"
#include "xml_check.hpp"

#include <euler/plot/charts.hpp>
#include <euler/plot/csv.hpp>
#include <euler/plot/plane.hpp>
#include <euler/plot/training_curves.hpp>


#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>

namespace test_plot {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler::plot;
using euler_test::count_of;
using euler_test::xml_problem;

namespace {
const double kNan = std::nan("");

std::string temp_dir(const std::string& name) {
  auto dir = euler_test::scratch_dir("plot") / name;
  std::filesystem::remove_all(dir);
  return dir.string();
}

// Is x 1, 2 or 5 times a power of ten?
bool is_nice(double x) {
  double f = x / std::pow(10.0, std::floor(std::log10(x)));
  return std::abs(f - 1) < 1e-9 || std::abs(f - 2) < 1e-9 || std::abs(f - 5) < 1e-9 || std::abs(f - 10) < 1e-9;
}
}  // namespace

TEST_CASE("xml_escape: markup characters, control characters, invalid UTF-8") {
  CHECK(xml_escape("a < b & c > \"d\" 'e'") == "a &lt; b &amp; c &gt; &quot;d&quot; &apos;e&apos;");
  CHECK(xml_escape("]]>") == "]]&gt;");
  CHECK(xml_escape("tab\there\x01\x1f") == "tab here  ");
  CHECK(xml_escape("\xce\xb4\xce\xb8 \xe2\x82\xac \xf0\x9f\x98\x80") == "\xce\xb4\xce\xb8 \xe2\x82\xac \xf0\x9f\x98\x80");  // δθ € 😀
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(xml_escape("\xff") == fffd);
  CHECK(xml_escape("a\xc3") == "a" + fffd);                       // truncated sequence
  CHECK(xml_escape("\xc0\x80") == fffd + fffd);                   // overlong NUL
  CHECK(xml_escape("\xed\xa0\x80") == fffd + fffd + fffd);        // a surrogate
  CHECK(xml_escape("\xef\xbf\xbe") == fffd + fffd + fffd);        // U+FFFE, not allowed in XML
  CHECK(xml_escape("\xf4\x90\x80\x80").find(fffd) == 0);          // past U+10FFFF
  // Whatever the bytes, the result is valid UTF-8 and safe inside an element and an attribute.
  std::mt19937 rng(5);
  for (int round = 0; round < 200; ++round) {
    std::string bytes;
    for (int i = 0; i < 40; ++i) bytes += char(rng() & 0xff);
    std::string doc = "<a b=\"" + xml_escape(bytes) + "\">" + xml_escape(bytes) + "</a>";
    REQUIRE_MESSAGE(xml_problem(doc) == "", xml_problem(doc));
  }
}

TEST_CASE("the XML check itself rejects what it should") {
  CHECK(xml_problem("<a><b/></a>") == "");
  CHECK(xml_problem("<a><b></a>") != "");
  CHECK(xml_problem("<a x=\"1\" x=\"2\"/>") != "");
  CHECK(xml_problem("<a>&nbsp;</a>") != "");
  CHECK(xml_problem("<a>x < y</a>") != "");
  CHECK(xml_problem("<a/><b/>") != "");
  CHECK(xml_problem("<a x=1/>") != "");
  CHECK(xml_problem("<a>\xff</a>") != "");
  CHECK(xml_problem("<a>") != "");
}

TEST_CASE("nice_ticks: round steps that enclose the data") {
  Ticks t = nice_ticks(0.013, 0.87);
  CHECK(t.step == doctest::Approx(0.2));
  CHECK(t.lo == 0);
  CHECK(t.hi == doctest::Approx(1.0));
  CHECK(t.labels == std::vector<std::string>{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"});

  t = nice_ticks(-std::numbers::pi, std::numbers::pi);
  CHECK(t.labels == std::vector<std::string>{"-4", "-2", "0", "2", "4"});

  t = nice_ticks(1, 40, 7, /*integer=*/true);
  CHECK(t.step == 10);
  CHECK(t.labels.front() == "0");
  CHECK(t.labels.back() == "40");
  t = nice_ticks(1, 3, 7, true);  // a few epochs: whole numbers only
  CHECK(t.step == 1);
  CHECK(t.labels == std::vector<std::string>{"1", "2", "3"});

  t = nice_ticks(2.1e-6, 3.1e-6);
  CHECK(t.labels == std::vector<std::string>{"2e-6", "2.2e-6", "2.4e-6", "2.6e-6", "2.8e-6", "3e-6", "3.2e-6"});
  t = nice_ticks(1.2e7, 2.5e7);
  CHECK(t.labels.front() == "1e7");
  CHECK(t.labels.back() == "2.5e7");

  // Degenerate input still gives a usable axis.
  t = nice_ticks(5, 5);
  CHECK(t.lo < 5);
  CHECK(t.hi > 5);
  t = nice_ticks(0, 0);
  CHECK(t.lo < 0);
  CHECK(t.hi > 0);
  t = nice_ticks(kNan, 3);
  CHECK(t.lo == 0);
  CHECK(t.hi == 1);
  t = nice_ticks(INFINITY, -INFINITY);
  CHECK(t.values.size() >= 2);
  t = nice_ticks(10, -10);  // swapped
  CHECK(t.lo == -10);
  CHECK(t.hi == 10);
  t = nice_ticks(-1e308, 1e308);
  CHECK(std::isfinite(t.step));
  CHECK(t.values.size() <= 13);

  // No "-0" and no rounding noise in labels.
  t = nice_ticks(-0.3, 0.30000000000000004);
  for (const std::string& label : t.labels) {
    CHECK(label != "-0.0");
    CHECK(label.size() <= 4);
  }

  // Properties over many random ranges.
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> exponent(-9, 9), unit(-1, 1);
  for (int round = 0; round < 2000; ++round) {
    double scale = std::pow(10.0, exponent(rng));
    double a = unit(rng) * scale, b = a + std::abs(unit(rng)) * scale * std::pow(10.0, -3 * std::abs(unit(rng)));
    int target = 2 + int(rng() % 10);
    t = nice_ticks(a, b, target);
    CAPTURE(a);
    CAPTURE(b);
    CAPTURE(target);
    REQUIRE(t.values.size() == t.labels.size());
    CHECK(t.values.size() >= 2);
    CHECK(t.values.size() <= size_t(2 * target + 2));
    CHECK(is_nice(t.step));
    CHECK(t.lo <= std::min(a, b));
    CHECK(t.hi >= std::max(a, b));
    for (size_t i = 1; i < t.labels.size(); ++i) CHECK(t.labels[i] != t.labels[i - 1]);
  }
}

TEST_CASE("LinePlot: one polyline per finite run, a legend, no NaN in the document") {
  LinePlot p;
  p.title = "loss <per> epoch";
  p.x_label = "epoch";
  p.y_label = "loss";
  p.series.push_back({"a & b", {1, 2, 3, 4, 5}, {1, 2, kNan, 4, 5}});  // two runs
  p.series.push_back({"c", {1, 2, 3}, {3, 2, 1}});
  p.series.push_back({"lonely", {1, 2, 3}, {kNan, 2, INFINITY}});       // one point: a dot only
  p.markers.push_back({2, "best"});
  std::string svg = p.svg();
  REQUIRE_MESSAGE(xml_problem(svg) == "", xml_problem(svg));
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(count_of(svg, "<polyline") == 3);
  CHECK(count_of(svg, "<circle") == 4 + 3 + 1);  // few points: dots on all of them
  CHECK(svg.find(">a &amp; b</text>") != std::string::npos);
  CHECK(svg.find(">loss &lt;per&gt; epoch</text>") != std::string::npos);
  CHECK(svg.find(">best</text>") != std::string::npos);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
  CHECK(count_of(svg, "clip-path=\"url(#plot-area)\"") == 1);

  // The y ticks are the nice ticks of the finite data.
  for (const std::string& label : nice_ticks(1, 5).labels) CHECK(svg.find(">" + label + "</text>") != std::string::npos);

  LinePlot empty;
  empty.series.push_back({"nothing", {1, 2}, {kNan, kNan}});
  std::string e = empty.svg();
  CHECK(xml_problem(e) == "");
  CHECK(e.find("no finite data") != std::string::npos);
  CHECK(count_of(e, "<polyline") == 0);

  LinePlot bad;
  bad.series.push_back({"bad", {1, 2, 3}, {1, 2}});
  CHECK(euler_test::error_of<std::invalid_argument>([&] { (void)bad.svg(); }).find("series 'bad' has 3 x values but 2 y values") !=
        std::string::npos);
}

TEST_CASE("LinePlot with a logarithmic y axis: decades, values <= 0 left out") {
  LinePlot p;
  p.log_y = true;
  p.series.push_back({"g", {0, 1, 2, 3, 4}, {2e-7, 3e-5, 0.0, -1.0, 0.5}});
  std::string svg = p.svg();
  REQUIRE_MESSAGE(xml_problem(svg) == "", xml_problem(svg));
  CHECK(count_of(svg, "<polyline") == 1);  // 2e-7, 3e-5; then the two left out; 0.5 alone (a dot)
  CHECK(count_of(svg, "<circle") == 3);
  for (const char* label : {">1e-7</text>", ">1e-6</text>", ">1e-4</text>", ">0.001</text>", ">0.1</text>", ">1</text>"})
    CHECK_MESSAGE(svg.find(label) != std::string::npos, label);
  CHECK(LinePlot::power_of_ten_label(-2) == "0.01");
  CHECK(LinePlot::power_of_ten_label(3) == "1000");
  CHECK(LinePlot::power_of_ten_label(-9) == "1e-9");

  LinePlot none;
  none.log_y = true;
  none.series.push_back({"zeros", {1, 2}, {0, 0}});
  CHECK(none.svg().find("no finite positive data") != std::string::npos);
}

TEST_CASE("Heatmap: a cell per value, a colour bar, NaN cells grey") {
  Heatmap h;
  h.title = "attention";
  h.rows = 3;
  h.cols = 4;
  h.values = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, kNan};
  std::string svg = h.svg();
  REQUIRE_MESSAGE(xml_problem(svg) == "", xml_problem(svg));
  // background + 12 cells + frame + 64 colour bands + colour bar frame + the NaN swatch
  CHECK(count_of(svg, "<rect") == 1 + 12 + 1 + 64 + 1 + 1);
  CHECK(svg.find("not finite") != std::string::npos);
  CHECK(svg.find("#bdbdbd") != std::string::npos);
  CHECK(svg.find(viridis(0)) != std::string::npos);  // the smallest value
  CHECK(svg.find(viridis(1)) != std::string::npos);  // the largest
  CHECK(svg.find("nan") == std::string::npos);

  // Diverging: symmetric about zero, white in the middle.
  Heatmap d;
  d.rows = 1;
  d.cols = 3;
  d.values = {-2, 0, 1};
  d.diverging = true;
  std::string ds = d.svg();
  CHECK(xml_problem(ds) == "");
  CHECK(ds.find(diverging(0.5)) != std::string::npos);  // the 0 cell
  CHECK(ds.find(">-2</text>") != std::string::npos);
  CHECK(ds.find(">2</text>") != std::string::npos);

  Heatmap none;
  std::string ns = none.svg();
  CHECK(xml_problem(ns) == "");
  CHECK(ns.find("no data") != std::string::npos);

  Heatmap bad;
  bad.rows = 2;
  bad.cols = 2;
  bad.values = {1, 2, 3};
  CHECK(euler_test::error_of<std::invalid_argument>([&] { (void)bad.svg(); }).find("3 values for 2 x 2 cells") != std::string::npos);
}

TEST_CASE("Heatmap: the diagonal marked, a caption, a robust colour range") {
  Heatmap h;
  h.rows = h.cols = 4;
  h.values.assign(16, 0.25);
  CHECK(count_of(h.svg(), "stroke-dasharray") == 0);
  h.mark_diagonal = true;
  h.caption = "42% of the weight on the item itself";
  std::string svg = h.svg();
  CHECK(xml_problem(svg) == "");
  CHECK(count_of(svg, "stroke-dasharray=\"5 4\"") == 1);
  CHECK(svg.find(">42% of the weight on the item itself</text>") != std::string::npos);

  // 100 small signed values and one huge one: the plain range is set by the huge one, the robust
  // range by the 98th percentile of |value| (cells beyond it take the end colours).
  std::vector<double> values;
  for (int i = 0; i < 100; ++i) values.push_back(0.01 * std::sin(i));
  values.push_back(50.0);
  CHECK(percentile_range(values, 0.02, 0.98, true).second < 0.011);
  CHECK(percentile_range(values, 0.02, 0.98, true).first == -percentile_range(values, 0.02, 0.98, true).second);
  CHECK(percentile_range({kNan}, 0.02, 0.98, false) == std::pair<double, double>{0.0, 1.0});
  CHECK(percentile_range({3, 1, 2, 5, 4}, 0.0, 1.0, false) == std::pair<double, double>{1.0, 5.0});
  Heatmap d;
  d.rows = 1;
  d.cols = int64_t(values.size());
  d.values = values;
  d.diverging = true;
  CHECK(d.svg().find(">50</text>") != std::string::npos);  // the colour bar reaches the outlier
  d.robust = true;
  std::string robust = d.svg();
  CHECK(xml_problem(robust) == "");
  CHECK(robust.find(">50</text>") == std::string::npos);
  CHECK(robust.find(">0.010</text>") != std::string::npos);  // the bar spans about +-0.01
  CHECK(robust.find(">-0.010</text>") != std::string::npos);
  CHECK(robust.find(diverging(1)) != std::string::npos);    // the outlier takes the end colour
}

TEST_CASE("PlanePlot: arrows from the origin on one scale, arcs, the negative real axis, bad tips noted") {
  PlanePlot p;
  p.size = 400;
  p.arrows = {{"q", {1, 0}, 0}, {"2i", {0, 2}, 1, true}, {"<b>", {-1, 0}, 2}};
  std::string svg = p.svg();
  CHECK(xml_problem(svg) == "");
  CHECK(count_of(svg, "<polygon") == 3);                 // one arrowhead each
  CHECK(svg.find(">&lt;b&gt;</text>") != std::string::npos);  // labels escaped
  // One scale: the longest arrow (|2i| = 2) sets it, the drawing area is 2 * 1.15 * 2 units wide, so a
  // unit is 400 / 4.6 px on both axes; the tip of q is that far right of the centre.
  const double unit = 400 / 4.6, centre_x = (400 + 2 * 70) / 2.0;  // 70 px of margin on each side
  CHECK(svg.find("points=\"" + coord(centre_x + unit) + ",") != std::string::npos);     // q's arrowhead starts at its tip
  CHECK(svg.find("points=\"" + coord(centre_x - unit) + ",") != std::string::npos);     // and -1's, as far to the left
  CHECK(count_of(svg, "stroke=\"#D55E00\" stroke-width=\"3.00\"") == 0);
  p.mark_negative_real = true;
  p.arcs = {{"1 rad", 0, 1, 0.5, 0}};
  p.arrows.push_back({"lost", {kNan, 1}, 3});
  p.arrows.push_back({"zero", {0, 0}, 4});
  p.caption = "what it shows";
  svg = p.svg();
  CHECK(xml_problem(svg) == "");
  CHECK(count_of(svg, "stroke=\"#D55E00\" stroke-width=\"3.00\"") == 1);  // the negative real axis
  CHECK(svg.find(">1 rad</text>") != std::string::npos);
  CHECK(svg.find("what it shows (1 arrow with a non-finite tip left out)") != std::string::npos);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(count_of(svg, "<circle") == 1);  // the zero vector is a dot
}

TEST_CASE("Histogram: bins, shares, values left out") {
  Histogram g;
  g.bins = 4;
  g.range = {{0.0, 4.0}};
  g.series.push_back({"a", {0, 0.5, 1, 2.5, 4, kNan, 9, -1}});  // 4 goes in the last bin; NaN, 9, -1 left out
  Bins b = g.bin_counts();
  CHECK(b.height[0] == std::vector<double>{2, 1, 1, 1});
  CHECK(b.left_out[0] == 3);
  CHECK(b.edge(0) == 0);
  CHECK(b.edge(4) == 4);
  g.normalize = true;
  b = g.bin_counts();
  CHECK(b.height[0][0] == doctest::Approx(0.4));
  double total = 0;
  for (double h : b.height[0]) total += h;
  CHECK(total == doctest::Approx(1.0));

  g.series.push_back({"b", {1.5, 1.5}});
  std::string svg = g.svg();
  REQUIRE_MESSAGE(xml_problem(svg) == "", xml_problem(svg));
  CHECK(count_of(svg, "<polygon") == 2);
  CHECK(svg.find("3 values not finite or outside the range, left out") != std::string::npos);
  CHECK(svg.find("share of values") != std::string::npos);

  Histogram constant;  // all values equal: a range around them
  constant.series.push_back({"seven", std::vector<double>(10, 7.0)});
  Bins c = constant.bin_counts();
  CHECK(c.lo < 7);
  CHECK(c.hi > 7);
  double count = 0;
  for (double h : c.height[0]) count += h;
  CHECK(count == 10);
  CHECK(xml_problem(constant.svg()) == "");

  Histogram empty;
  empty.series.push_back({"none", {}});
  CHECK(empty.svg().find("no finite data") != std::string::npos);

  Histogram bad;
  bad.bins = 0;
  CHECK(euler_test::error_of<std::invalid_argument>([&] { (void)bad.bin_counts(); }).find("bins must be in 1..100000") != std::string::npos);
}

TEST_CASE("Csv: quoting, numbers, row length") {
  Csv csv({"epoch", "name, with comma", "value"});
  csv.row({1, "plain", 0.5});
  csv.row({2, "say \"hi\"", kNan});
  csv.row({int64_t(3), "two\nlines", -INFINITY});
  CHECK(csv.str() == "epoch,\"name, with comma\",value\n1,plain,0.5\n2,\"say \"\"hi\"\"\",nan\n3,\"two\nlines\",-inf\n");
  CHECK(csv.rows() == 3);
  CHECK(csv_number(1.0 / 3) == "0.3333333333");
  CHECK(euler_test::error_of<std::invalid_argument>([&] { csv.row({1, 2}); }).find("a row of 2 cells for 3 columns") != std::string::npos);
}

TEST_CASE("training curves: read_json_lines and write_training_curves") {
  std::string dir = temp_dir("curves");
  std::filesystem::create_directories(dir);
  std::string log = dir + "/log.jsonl";
  std::ofstream(log) << "{\"epoch\": 1, \"loss\": 5.0, \"loss_ce\": 4.9, \"loss_con\": 0.1, \"valid_ndcg@10\": 0.1, "
                        "\"valid_hr@10\": 0.2, \"valid_mrr@10\": 0.05, \"best_epoch\": 1, \"seconds\": 2}\n"
                        "\n"
                        "{\"epoch\": 2, \"loss\": 4.0, \"loss_ce\": 3.95, \"loss_con\": 0.05, \"valid_ndcg@10\": 0.2, "
                        "\"valid_hr@10\": 0.3, \"best_epoch\": 2, \"seconds\": 2}\n";
  std::vector<nlohmann::json> records = read_json_lines(log);
  REQUIRE(records.size() == 2);
  std::vector<std::string> files = write_training_curves(dir + "/plots", records, "tiny <data>");
  CHECK(files.size() == 4);  // curves.csv, loss.svg, contrastive.svg, validation.svg
  std::string csv = euler::read_file(dir + "/plots/curves.csv");
  CHECK(csv.rfind("epoch,loss,loss_ce,loss_con,valid_hr@10,valid_ndcg@10,valid_mrr@10,best_epoch,seconds\n", 0) == 0);
  CHECK(csv.find("\n2,4,3.95,0.05,0.3,0.2,nan,2,2\n") != std::string::npos);  // valid_mrr@10 missing in epoch 2

  // Validation metrics by metric, then K numerically; other fields after them.
  std::vector<nlohmann::json> many = {{{"valid_mrr@5", 1}, {"valid_hr@20", 1}, {"valid_hr@5", 1}, {"valid_count", 9}, {"epoch", 1}, {"zeta", 0}}};
  CHECK(numeric_fields(many) == std::vector<std::string>{"epoch", "valid_hr@5", "valid_hr@20", "valid_mrr@5", "valid_count", "zeta"});
  for (const char* name : {"loss.svg", "contrastive.svg", "validation.svg"}) {
    std::string svg = euler::read_file(dir + "/plots/" + name);
    CAPTURE(name);
    CHECK(xml_problem(svg) == "");
    CHECK(svg.find("(tiny &lt;data&gt;)") != std::string::npos);
  }
  CHECK(euler::read_file(dir + "/plots/validation.svg").find(">best epoch</text>") != std::string::npos);

  // Without a contrastive term: no contrastive.svg, only the cross-entropy curve.
  for (nlohmann::json& r : records) r["loss_con"] = 0.0;
  files = write_training_curves(dir + "/plain", records);
  CHECK(files.size() == 3);
  CHECK(!std::filesystem::exists(dir + "/plain/contrastive.svg"));
  CHECK(count_of(euler::read_file(dir + "/plain/loss.svg"), "<polyline") == 1);

  // EulerFormer's rotation fields (train/rotation_watch.hpp): four more pictures, a curve per layer.
  for (size_t e = 0; e < records.size(); ++e)
    for (int l = 0; l < 2; ++l) {
      std::string k = "l" + std::to_string(l) + "_";
      records[e][k + "delta"] = 1.0 + 0.01 * double(e + l);
      records[e][k + "b"] = -0.02 * double(e);
      records[e][k + "delta_grad_mean"] = 0.001;
      records[e][k + "delta_grad_sd"] = 0.01;
      records[e][k + "b_grad_mean"] = -0.002;
      records[e][k + "b_grad_sd"] = 0.004;
      records[e][k + "query_phase_concentration"] = 0.1;
      records[e][k + "key_phase_concentration"] = 0.2;
    }
  files = write_training_curves(dir + "/rotation", records);
  CHECK(files.size() == 7);
  for (const char* name : {"delta.svg", "phase_bias.svg", "rotation_gradients.svg", "phase_concentration.svg"}) {
    std::string svg = euler::read_file(dir + "/rotation/" + name);
    CAPTURE(name);
    CHECK(xml_problem(svg) == "");
    CHECK(svg.find(">layer 1") != std::string::npos);
  }
  CHECK(count_of(euler::read_file(dir + "/rotation/delta.svg"), "<polyline") == 2);
  CHECK(count_of(euler::read_file(dir + "/rotation/rotation_gradients.svg"), "<polyline") == 4);  // delta and b, two layers
  CHECK(count_of(euler::read_file(dir + "/rotation/phase_concentration.svg"), "<polyline") == 4);  // queries and keys
  CHECK(euler::read_file(dir + "/rotation/curves.csv").find("l0_delta,") != std::string::npos);

  std::ofstream(dir + "/bad.jsonl") << "{\"epoch\": 1}\n[1, 2]\n";
  CHECK(euler_test::error_of<euler::IoError>([&] { read_json_lines(dir + "/bad.jsonl"); }).find("bad.jsonl:2: not a JSON object") !=
        std::string::npos);
  std::ofstream(dir + "/torn.jsonl") << "{\"epoch\": 1}\n{\"epoch\": 2, \"lo";
  CHECK(euler_test::error_of<euler::IoError>([&] { read_json_lines(dir + "/torn.jsonl"); }).find("torn.jsonl:2:") != std::string::npos);
  CHECK(euler_test::error_of<euler::IoError>([&] { write_training_curves(log + "/x", records); }).find("cannot create the plot directory") !=
        std::string::npos);
}

}  // namespace test_plot
