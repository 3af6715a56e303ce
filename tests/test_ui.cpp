// QKLab UI tests — Catch2 driving the real MainWindow with QTest events on the offscreen
// platform: run controls change the step counter, another head changes the heatmap, exports
// write valid PNG/SVG/PDF/CSV and a report, a CLI run folder replays its curves, the GUI thread's
// event-loop latency while training at full speed, and closing mid-run stops promptly.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <QAction>
#include <QApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <algorithm>

#include "attention_view.h"
#include "loss_plot.h"
#include "main_window.h"
#include "plot_export.h"
#include "presets.h"
#include "run_dir.h"
#include "trainer.h"

using qkui::MainWindow;

namespace {

bool wait_until(const std::function<bool()>& pred, int ms) {
  QElapsedTimer t;
  t.start();
  while (!pred()) {
    if (t.elapsed() > ms) return false;
    QTest::qWait(10);
  }
  return true;
}

QByteArray head_of(const QString& path, int n) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return f.read(n);
}

void ready(MainWindow& w) { REQUIRE(wait_until([&] { return w.info().total_steps > 0; }, 20000)); }

}  // namespace

TEST_CASE("start / pause / step change the step counter", "[ui]") {
  MainWindow w;
  w.show();
  ready(w);
  auto* step = w.findChild<QAction*>("step");
  REQUIRE(step);
  step->trigger();
  REQUIRE(wait_until([&] { return w.stepsDone() == 1; }, 10000));
  w.findChild<QAction*>("start")->trigger();
  REQUIRE(wait_until([&] { return w.stepsDone() > 20; }, 20000));
  w.findChild<QAction*>("pause")->trigger();
  REQUIRE(wait_until([&] { return !w.isRunning(); }, 2000));
  QTest::qWait(300);
  const qint64 paused_at = w.stepsDone();
  QTest::qWait(500);
  CHECK(w.stepsDone() == paused_at);
  CHECK(w.lossPlot()->curveCount() >= 4);
  std::cout << "ui: paused at step " << paused_at << "\n";
}

TEST_CASE("picking another head changes the heatmap data", "[ui]") {
  MainWindow w;
  w.show();
  ready(w);
  w.findChild<QAction*>("step")->trigger();
  REQUIRE(wait_until([&] { return w.stepsDone() == 1; }, 10000));
  w.tabs()->setCurrentWidget(w.attentionView());
  REQUIRE(wait_until([&] { return !w.attentionView()->shownWeights("standard").empty(); }, 10000));
  auto head0 = w.attentionView()->shownWeights("merged");
  auto* head = w.attentionView()->findChild<QSpinBox*>("attentionHead");
  REQUIRE(head);
  head->setValue(1);
  auto head1 = w.attentionView()->shownWeights("merged");
  REQUIRE(head1.size() == head0.size());
  CHECK(head1 != head0);
  CHECK(w.attentionView()->exportables().size() == 2);
}

TEST_CASE("exports write valid PNG, SVG, PDF, CSV and an HTML report", "[ui]") {
  MainWindow w;
  w.show();
  ready(w);
  w.findChild<QAction*>("step")->trigger();
  REQUIRE(wait_until([&] { return w.stepsDone() == 1 && !w.lossPlot()->rows().empty(); }, 10000));
  QTemporaryDir dir;
  auto items = w.lossPlot()->exportables();
  REQUIRE(items.size() == 1);
  for (QString ext : {"png", "svg", "pdf"}) CHECK(qkui::export_plot(items[0].plot, dir.filePath("loss." + ext), "Loss").isEmpty());
  CHECK(head_of(dir.filePath("loss.png"), 4) == QByteArray("\x89PNG"));
  CHECK(head_of(dir.filePath("loss.svg"), 400).contains("<svg"));
  CHECK(head_of(dir.filePath("loss.pdf"), 4) == QByteArray("%PDF"));
  CHECK(items[0].write_csv(dir.filePath("loss.csv")).isEmpty());
  CHECK(head_of(dir.filePath("loss.csv"), 20).startsWith("step,tokens_seen"));
  CHECK(qkui::export_plot(items[0].plot, dir.filePath("loss.bmp"), "Loss").contains("unknown image type"));
  w.exportReport(dir.filePath("report"));
  CHECK(QFile::exists(dir.filePath("report/index.html")));
  CHECK(QFile::exists(dir.filePath("report/loss.svg")));
  CHECK(QFile::exists(dir.filePath("report/config.json")));
  CHECK(w.lastError().isEmpty());
}

TEST_CASE("opening a CLI run folder shows its curves", "[ui]") {
  QTemporaryDir dir;
  size_t rows = 0;
  {
    auto c = qk::preset_config("default");
    c.train.steps = 30;
    c.train.eval_every = 10;
    qk::Experiment e(c);
    qk::RunWriter writer(dir.path().toStdString(), false);
    writer.write_config(e.config());
    e.run(&writer, nullptr);
    e.save_checkpoints(dir.path().toStdString());
    rows = qk::read_metrics_csv(dir.filePath("metrics.csv").toStdString()).size();
  }
  MainWindow w;
  w.show();
  ready(w);
  w.openRunFolder(dir.path());
  REQUIRE(wait_until([&] { return w.lossPlot()->rows().size() == rows; }, 10000));
  CHECK(w.lossPlot()->curveCount() == 4);
  CHECK(w.info().run_dir == dir.path());
  // The checkpoints can be inspected: attention maps arrive.
  w.tabs()->setCurrentWidget(w.attentionView());
  CHECK(wait_until([&] { return !w.attentionView()->shownWeights("standard").empty(); }, 10000));
  // A folder that is not a run gives a message, not a crash.
  QTemporaryDir empty;
  w.openRunFolder(empty.path());
  CHECK(wait_until([&] { return w.lastError().contains("not a run folder"); }, 5000));
}

TEST_CASE("GUI thread latency while training at full speed, and closing mid-run saves and stops promptly", "[ui][latency]") {
  auto w = std::make_unique<MainWindow>();
  w->show();
  ready(*w);
  const QString info_dir = w->info().save_dir;
  REQUIRE(!info_dir.isEmpty());
  w->start();
  REQUIRE(wait_until([&] { return w->stepsDone() > 5; }, 20000));
  // Probe: a 10 ms timer on the GUI thread; the worst lateness is the longest stall.
  QElapsedTimer clock;
  clock.start();
  qint64 last = 0, worst = 0;
  int ticks = 0;
  QTimer probe;
  probe.setTimerType(Qt::PreciseTimer);
  QObject::connect(&probe, &QTimer::timeout, [&] {
    const qint64 now = clock.elapsed();
    if (ticks++ > 0) worst = std::max(worst, now - last - 10);
    last = now;
  });
  probe.start(10);
  QTest::qWait(3000);
  probe.stop();
  const qint64 steps = w->stepsDone();
  std::cout << "ui latency: worst GUI-thread stall " << worst << " ms over " << ticks << " ticks while training ("
            << steps << " steps done)\n";
  CHECK(w->isRunning());
  CHECK(worst < 50);
  QElapsedTimer close;
  close.start();
  w->close();
  w.reset();  // joins the worker thread
  std::cout << "ui: closing mid-run took " << close.elapsed() << " ms\n";
  CHECK(close.elapsed() < 1000);
  // The run was saved: config, metrics and (on close) checkpoints.
  const QString saved = info_dir;
  CHECK(QFile::exists(saved + "/config.json"));
  CHECK(QFile::exists(saved + "/metrics.csv"));
  CHECK(QFile::exists(saved + "/standard.safetensors"));
}

TEST_CASE("CSV data converts to JSON records with quoted cells", "[ui]") {
  const QString json = qkui::csv_to_json("query,key_token,weight\n0,\"a, \"\"b\"\"\",0.5\n");
  CHECK(json.contains("\"key_token\": \"a, \\\"b\\\"\""));
  CHECK(json.contains("\"weight\": 0.5"));
}

int main(int argc, char** argv) {
  qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  QApplication::setOrganizationName("QKLab-tests");
  QApplication::setApplicationName("qklab-ui-tests");
  QStandardPaths::setTestModeEnabled(true);
  qk::configure_threads(1, 1);
  return Catch::Session().run(argc, argv);
}
