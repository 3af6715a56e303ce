// QKLab UI tests — Catch2 driving the real MainWindow with QTest events on the offscreen
// platform: run controls change the step counter, another head changes the heatmap, exports
// write valid PNG/SVG/PDF/CSV and a report, a CLI run folder replays its curves, the GUI thread's
// event-loop latency while training at full speed, and closing mid-run stops promptly.
#define CATCH_CONFIG_RUNNER
#include "blas_kernels.h"
#include <catch2/catch.hpp>

#include <QAction>
#include <QComboBox>
#include <QFileInfo>
#include <QSignalSpy>
#include <qcustomplot.h>
#include <QDirIterator>
#include <QProcess>
#include <QApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QImage>
#include <QSet>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <iostream>

#include "attention_view.h"
#include "loss_plot.h"
#include "spectra_view.h"
#include "rank_view.h"
#include "sweep_view.h"
#include "experiment_panel.h"
#include <QRegularExpression>
#include "samples_view.h"
#include <QPlainTextEdit>
#include "main_window.h"
#include "openmp_policy.h"
#include "ui_helpers.h"
#include "figure_export.h"
#include "plot_util.h"
#include "report.h"
#include "presets.h"
#include "fsutil.h"
#include "run_dir.h"
#include "trainer.h"

using qkui::MainWindow;

using namespace qkt_ui;

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
  // The worker finishes the step it is in (long on a loaded machine), then reports that it stopped.
  REQUIRE(wait_until([&] { return !w.workerRunning(); }, 10000));
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
  CHECK(w.attentionView()->panelCount() == 3);  // standard, merged, their difference
  CHECK(w.attentionView()->figures().size() == 1);
}

TEST_CASE("Export current view writes PNG at its own size — SVG — PDF — CSV and JSON", "[ui]") {
  MainWindow w;
  w.show();
  ready(w);
  w.findChild<QAction*>("step")->trigger();
  REQUIRE(wait_until([&] { return w.stepsDone() == 1 && !w.lossPlot()->rows().empty(); }, 10000));
  QTemporaryDir dir;
  w.showView("loss");
  for (QString ext : {"png", "svg", "pdf", "csv", "json"}) CHECK(w.exportViewTo(dir.filePath("loss." + ext)).isEmpty());
  QImage png(dir.filePath("loss.png"));
  CHECK(png.size() == QSize(1600, 1000));  // not the widget's on-screen size
  CHECK(head_of(dir.filePath("loss.svg"), 400).contains("<svg"));
  CHECK(head_of(dir.filePath("loss.pdf"), 4) == QByteArray("%PDF"));
  CHECK(head_of(dir.filePath("loss.csv"), 20).startsWith("step,tokens_seen"));
  CHECK(head_of(dir.filePath("loss.json"), 200).contains("\"val_loss\""));
  CHECK(w.exportViewTo(dir.filePath("loss.bmp")).contains("unknown image type"));
  // A long title shrinks, then wraps: it is never cut off.
  auto figs = w.lossPlot()->figures();
  REQUIRE(figs.size() == 1);
  figs[0].title = QString("A very long title that names every detail of the experiment ").repeated(3);
  const auto r = qkui::export_figure(figs[0], dir.filePath("long.png"));
  CHECK(r.error.isEmpty());
  CHECK(r.title_width <= r.plot_width);
  CHECK(r.legend_overlaps == 0);
  // The export size is a setting (File → Figure size for exports…).
  CHECK(!w.setExportSize("huge"));
  CHECK(!w.setExportSize("10x10@2"));
  REQUIRE(w.setExportSize("800x600@1"));
  CHECK(w.exportViewTo(dir.filePath("small.png")).isEmpty());
  CHECK(QImage(dir.filePath("small.png")).size() == QSize(800, 600));
  REQUIRE(w.setExportSize("1600x1000@2"));
}

TEST_CASE("Export report after a run with no other tab opened: every figure — every table — full titles", "[ui][report]") {
  MainWindow w;
  w.show();
  ready(w);
  w.start();
  REQUIRE(wait_until([&] { return w.stepsDone() >= 60; }, 60000));
  w.pause();
  REQUIRE(wait_until([&] { return !w.isRunning(); }, 2000));
  QTest::qWait(200);
  REQUIRE(w.tabs()->currentIndex() == 0);  // only the loss tab was ever shown
  CHECK(w.spectraView()->spectra().empty());
  QTemporaryDir dir;
  QString written, error = "none";
  QObject::connect(&w, &MainWindow::reportWritten, [&](const QString& d, const QString& e) {
    written = d;
    error = e;
  });
  const QString rd = dir.filePath("report");
  w.exportReport(rd);
  REQUIRE(wait_until([&] { return !written.isEmpty(); }, 60000));
  CHECK(error.isEmpty());
  const auto& rep = w.lastReport();
  QStringList names;
  for (const auto& [file, r] : rep.pngs) {
    INFO(file.toStdString());
    names << file;
    const QImage img(rd + "/" + file);
    CHECK(img.size() == r.image_size);
    CHECK(img.width() == 1600);
    CHECK(img.height() >= 1000);
    CHECK(r.title_width > 0);
    CHECK(r.title_width <= r.plot_width);  // the title is drawn whole
    CHECK(r.legend_overlaps == 0);        // no legend over the data
    QSet<QRgb> colours;                   // a real picture, not empty axes
    for (int y = 0; y < img.height(); y += 7)
      for (int x = 0; x < img.width(); x += 7) colours.insert(img.pixel(x, y));
    CHECK(colours.size() > 20);
  }
  for (QString f : {"loss.png", "spectra_L0H0.png", "spectra_L0.png", "spectra_L1.png", "rank_summary.png",
                    "truncation.png", "divergence.png", "effective_rank.png", "attention_L0.png", "attention_L1.png"})
    CHECK(names.contains(f));
  CHECK(QImage(rd + "/loss.png").size() == QSize(1600, 1000));
  auto rows = [&](const QString& f) {
    QFile file(rd + "/" + f);
    if (!file.open(QIODevice::ReadOnly)) return -1;
    return int(file.readAll().trimmed().split('\n').size()) - 1;
  };
  CHECK(rows("spectra.csv") > 0);
  CHECK(rows("truncation.csv") == 2 * 8);  // 2 variants × ranks 0, 1, 2, …, 64
  CHECK(rows("rank_metrics.csv") == 2 * 2 * 4);
  CHECK(rows("attention_L0.csv") > 0);
  CHECK(rows("metrics.csv") > 0);
  QFile html(rd + "/index.html");
  REQUIRE(html.open(QIODevice::ReadOnly));
  const QString page = QString::fromUtf8(html.readAll());
  CHECK(page.contains(QString("computed at step %1, seed 123").arg(w.stepsDone())));
  CHECK(page.contains("<h2>Summary</h2>"));
  CHECK(page.contains("<h2>Rank metrics</h2>"));
  CHECK(page.count("<figcaption>") == rep.pngs.size());
  CHECK(w.lastError().isEmpty());
}

TEST_CASE("a run folder with two seeds replays — and the seed picker switches the inspected models", "[ui][seeds]") {
  QTemporaryDir dir;
  write_run(dir.path(), 20, 2);
  MainWindow w;
  w.show();
  ready(w);
  w.openRunFolder(dir.path());
  REQUIRE(wait_until([&] { return w.info().run_dir == dir.path(); }, 10000));
  CHECK(w.info().seeds == QList<int>{123, 124});
  CHECK(w.info().seed == 123);
  REQUIRE(wait_until([&] { return w.lossPlot()->curveCount() > 0; }, 10000));
  CHECK(w.lossPlot()->curveCount() == 12);  // 2 variants × train/val × (mean, min, max)
  w.showView("attention");
  REQUIRE(wait_until([&] { return !w.attentionView()->shownWeights("merged").empty(); }, 10000));
  const auto seed123 = w.attentionView()->shownWeights("merged");
  w.openRunFolder(dir.path(), 124);
  REQUIRE(wait_until([&] { return w.info().seed == 124; }, 10000));
  REQUIRE(wait_until([&] {
    auto now = w.attentionView()->shownWeights("merged");
    return !now.empty() && now != seed123;
  }, 10000));
  CHECK(w.lastError().isEmpty());
}

TEST_CASE("opening a CLI run folder shows its curves", "[ui]") {
  QTemporaryDir dir;
  write_run(dir.path(), 30, 1);
  const size_t rows = qk::read_metrics_csv(dir.filePath("metrics.csv").toStdString()).size();
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

TEST_CASE("GUI thread latency while training at full speed — and closing mid-run saves and stops promptly", "[ui][latency]") {
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
  qk::choose_blas_kernels();  // the kernels qklab uses (blas_kernels.h)
#ifdef QKLAB_LSAN_SUPPRESSIONS
  // The sanitizer build: the tests run with LeakSanitizer on, Qt's own allocations suppressed
  // (tests/ui/lsan_qt.supp; setup.sh turns leak detection off for the rest). Not while CTest lists
  // the tests at build time, and set before the re-execution below so that it takes.
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing |= std::string(argv[i]).rfind("--list", 0) == 0;
  if (!listing && !std::getenv("QKLAB_LSAN_ON")) {
    setenv("QKLAB_LSAN_ON", "1", 1);
    setenv("ASAN_OPTIONS", "detect_leaks=1", 1);
    setenv("LSAN_OPTIONS", "suppressions=" QKLAB_LSAN_SUPPRESSIONS ":print_suppressions=0", 1);
    if (!std::getenv("OMP_WAIT_POLICY")) setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
  }
#endif
  qkui::ensure_passive_openmp(argv);  // as qklab itself (openmp_policy.h)
  qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  QApplication::setOrganizationName("QKLab-tests");
  QApplication::setApplicationName("qklab-ui-tests");
  QStandardPaths::setTestModeEnabled(true);
  qk::configure_threads(1, 1);
  return Catch::Session().run(argc, argv);
}

TEST_CASE("File → Resume training continues a stopped run folder exactly", "[ui][resume]") {
  QTemporaryDir a, b;
  auto c = qk::preset_config("default");
  c.train.steps = 60;
  c.train.eval_every = 10;
  {  // A: straight through; B: stopped after 25 steps with its training state saved, as a stop does
    qk::Experiment e(c);
    qk::RunWriter writer(a.path().toStdString(), false);
    writer.write_config(e.config());
    e.run(&writer, nullptr);
  }
  {
    qk::Experiment e(c);
    qk::RunWriter writer(b.path().toStdString(), false);
    writer.write_config(e.config());
    for (int i = 0; i < 25; ++i) e.step(&writer);
    e.save_checkpoints(b.path().toStdString());
    qk::save_run_state(writer, e);
  }
  MainWindow w;
  w.show();
  ready(w);
  w.openRunFolder(b.path());
  REQUIRE(wait_until([&] { return w.info().run_dir == b.path() && w.info().resumable; }, 10000));
  w.resumeRun();
  REQUIRE(wait_until([&] { return w.info().resumed_at == 25; }, 10000));
  CHECK(w.info().save_dir == b.path());
  w.start();
  const auto rows_a = qk::read_metrics_csv(a.filePath("metrics.csv").toStdString());
  REQUIRE(wait_until([&] { return qk::read_metrics_csv(b.filePath("metrics.csv").toStdString()).size() == rows_a.size(); }, 30000));
  REQUIRE(wait_until([&] { return qk::run_state_step(b.path().toStdString()) == 60; }, 10000));  // saved at the end
  const auto rows_b = qk::read_metrics_csv(b.filePath("metrics.csv").toStdString());
  for (size_t i = 0; i < rows_a.size(); ++i) {
    INFO("row " << i);
    CHECK(rows_a[i].step == rows_b[i].step);
    CHECK(rows_a[i].variant == rows_b[i].variant);
    CHECK(rows_a[i].tokens_seen == rows_b[i].tokens_seen);
    CHECK(rows_a[i].train_loss == rows_b[i].train_loss);  // bit for bit
    CHECK(rows_a[i].val_loss == rows_b[i].val_loss);
    CHECK(rows_a[i].val_acc == rows_b[i].val_acc);
  }
}

TEST_CASE("an imported GPT-2 (one checkpoint file — no corpus) opens: attention — spectra — samples", "[ui][interchange]") {
  QTemporaryDir dir;
  // As a user gets one: a run's standard model exported to Hugging Face's layout and imported back
  // (`qklab-cli import --from hf-gpt2`): GPT-2's shape, q/k/v biases, no corpus in its config.
  write_run(dir.path(), 5, 1);
  const QString cli = QKLAB_CLI, file = dir.filePath("gpt2.safetensors");
  REQUIRE(std::system((cli + " export --to hf-gpt2 " + dir.filePath("standard.safetensors") + " " + dir.filePath("hf") +
                       " > /dev/null").toUtf8().constData()) == 0);
  REQUIRE(std::system((cli + " import --from hf-gpt2 " + dir.filePath("hf/model.safetensors") + " " + file + " > /dev/null")
                          .toUtf8().constData()) == 0);
  MainWindow w;
  w.show();
  ready(w);
  w.openRunFolder(file);
  REQUIRE(wait_until([&] { return w.info().run_dir == file; }, 10000));
  CHECK(w.info().variants == QStringList{"standard"});
  CHECK(!w.info().resumable);
  w.tabs()->setCurrentWidget(w.spectraView());
  REQUIRE(wait_until([&] { return !w.spectraView()->spectra().empty(); }, 10000));
  CHECK(w.spectraView()->spectra()[0].variant == "standard");
  CHECK(w.spectraView()->spectra()[0].sigma.size() >= 8);
  // Truncation needs validation data, which an import lacks: a message, not a crash.
  w.tabs()->setCurrentWidget(w.rankView()->widget());
  CHECK(wait_until([&] { return w.lastError().contains("without validation data"); }, 10000));
}

TEST_CASE("robustness: corrupt files and a binary drop get a message — closing during an export or analysis is clean", "[ui][robust]") {
  QTemporaryDir dir;
  auto junk = [&](const QString& name, const QByteArray& bytes) {
    QFile f(dir.filePath(name));
    REQUIRE(f.open(QIODevice::WriteOnly));
    f.write(bytes);
    return dir.filePath(name);
  };
  const QByteArray binary("\x7f" "ELF\x02\x01\x01\0\0\0\xff\xfe\x00\x01", 14);
  auto w = std::make_unique<MainWindow>();
  w->show();
  ready(*w);
  // A corrupt checkpoint, a corrupt experiment, a run folder with a corrupt metrics.csv, a binary "corpus".
  w->openRunFolder(junk("bad.safetensors", binary));
  CHECK(wait_until([&] { return w->lastError().contains("bad.safetensors: not a valid safetensors file"); }, 5000));
  CHECK(!w->openExperimentFile(junk("bad.json", "{\"model\": {\"emb_dim\": \"\xff\"}")));
  CHECK(wait_until([&] { return w->lastError().contains("bad.json"); }, 5000));
  QDir().mkpath(dir.filePath("run"));
  write_run(dir.filePath("run"), 10, 1);
  junk("run/metrics.csv", "step,tokens_seen,wall_time_s,variant,train_loss,val_loss\n1,2,x\xff\n");
  w->openRunFolder(dir.filePath("run"));
  CHECK(wait_until([&] { return w->lastError().contains("metrics.csv: line 2"); }, 5000));
  CHECK(!w->lastError().contains(QChar(0xFFFD)));  // the bad byte is shown escaped, not as garbage
  w->openCorpus(junk("program.bin", binary));
  CHECK(wait_until([&] { return w->lastError().contains("program.bin: looks like a binary file"); }, 5000));
  // Training still works afterwards.
  w->loadExperiment(qk::preset_config("default"));
  ready(*w);
  w->start();
  REQUIRE(wait_until([&] { return w->stepsDone() > 20; }, 20000));
  // Pause, export, and start again while the export runs: training goes on.
  w->pause();
  w->exportReport(dir.filePath("report"));
  const qint64 at_export = w->stepsDone();
  w->start();
  CHECK(wait_until([&] { return w->stepsDone() > at_export + 20; }, 20000));
  // An export and an analysis in flight, then the window closes: no crash, promptly.
  w->exportReport(dir.filePath("report2"));
  w->tabs()->setCurrentWidget(w->rankView()->widget());
  QElapsedTimer t;
  t.start();
  w->close();
  w.reset();
  std::cout << "closed with a report and an analysis in flight in " << t.elapsed() << " ms\n";
  CHECK(t.elapsed() < 10000);  // the report stops between two analyses (generous: shared, noisy machines)
}

TEST_CASE("crash recovery: qklab killed -9 mid-run — qklab-cli train --resume finishes it exactly", "[ui][crash]") {
  QTemporaryDir home, dir;
  auto c = qk::preset_config("default");
  c.train.steps = 100000;  // "overnight"
  c.train.eval_every = 10;
  c.train.autosave_steps = 20;
  QFile f(dir.filePath("exp.json"));
  REQUIRE(f.open(QIODevice::WriteOnly));
  f.write(QByteArray::fromStdString(qk::config_to_json(c).dump()));
  f.close();
  QProcess gui;
  auto env = QProcessEnvironment::systemEnvironment();
  env.insert("QT_QPA_PLATFORM", "offscreen");
  env.insert("XDG_DATA_HOME", home.path());  // the live run's folder goes here
  gui.setProcessEnvironment(env);
  gui.start(QKLAB_GUI, {dir.filePath("exp.json"), "--autostart"});
  REQUIRE(gui.waitForStarted(10000));
  QString run;
  REQUIRE(wait_until([&] {
    QDirIterator it(home.path(), {"state.json"}, QDir::Files, QDirIterator::Subdirectories);
    while (it.hasNext()) {
      const QString s = it.next();
      if (s.endsWith("/state/state.json")) run = QFileInfo(s).dir().absolutePath().section('/', 0, -2);
    }
    return !run.isEmpty() && qk::run_state_step(run.toStdString()) >= 60;
  }, 60000));
  QTest::qWait(150);
  gui.kill();  // SIGKILL
  gui.waitForFinished(5000);
  const int64_t at = qk::run_state_step(run.toStdString());
  CHECK(at >= 60);
  CHECK(at < 100000);  // the GUI autosaves at the first ~30 ms slice boundary after each 20 steps
  // The same resolved experiment straight through with the CLI, and the GUI's run resumed to 200 steps.
  auto cfg = qk::load_config_file((run + "/config.json").toStdString());
  cfg.train.steps = 200;
  QFile g(dir.filePath("straight.json"));
  REQUIRE(g.open(QIODevice::WriteOnly));
  g.write(QByteArray::fromStdString(qk::config_to_json(cfg).dump()));
  g.close();
  const QString cli = QKLAB_CLI;
  REQUIRE(std::system((cli + " train --quiet --config " + dir.filePath("straight.json") + " --out " + dir.filePath("a") +
                       " > /dev/null").toUtf8().constData()) == 0);
  REQUIRE(std::system((cli + " train --quiet --resume " + run + " --set train.steps=200 > /dev/null").toUtf8().constData()) == 0);
  const auto a = qk::read_metrics_csv(dir.filePath("a/metrics.csv").toStdString());
  const auto b = qk::read_metrics_csv((run + "/metrics.csv").toStdString());
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("row " << i);
    CHECK(a[i].step == b[i].step);
    CHECK(a[i].val_loss == b[i].val_loss);  // bit for bit
    CHECK(a[i].train_loss == b[i].train_loss);
  }
}

TEST_CASE("divergence guard in the GUI: halted variants are marked on their curves and the run ends cleanly", "[ui][guard]") {
  auto c = qk::preset_config("default");
  c.train.lr = 1000;
  c.train.steps = 60;
  c.train.eval_every = 5;
  MainWindow w;
  w.show();
  ready(w);
  w.loadExperiment(c);
  ready(w);
  QSignalSpy finished(&w, &MainWindow::trainingFinished);
  w.start();
  REQUIRE(wait_until([&] { return w.lossPlot()->halts().size() == 2; }, 20000));
  const auto& h = w.lossPlot()->halts()[0];
  CHECK(h.step < 10);
  CHECK_THAT(h.message, Catch::Matchers::Contains("halted: its"));
  // The mark is drawn: a line and a label per halted variant, besides the curves.
  CHECK(w.lossPlot()->plot()->itemCount() >= 4);
  CHECK(wait_until([&] { return finished.count() > 0; }, 10000));  // every variant halted: the run is over
}

TEST_CASE("a sweep folder opens in the Sweep view: mean and band over seeds — export — a click opens the run", "[ui][sweep]") {
  QTemporaryDir dir;
  QFile spec(dir.filePath("s.json"));
  REQUIRE(spec.open(QIODevice::WriteOnly));
  spec.write(R"({"name": "ui", "preset": "default", "set": {"train.steps": 30, "train.eval_every": 10, "train.eval_batches": 1},
                 "variants": ["standard", "merged"], "grid": {"model.n_heads": [2, 4]}, "seeds": [1, 2]})");
  spec.close();
  QProcess p;
  p.start(QKLAB_CLI, {"sweep", dir.filePath("s.json"), "--out", dir.filePath("sw"), "--jobs", "2"});
  REQUIRE(p.waitForFinished(300000));
  INFO(p.readAllStandardError().toStdString());
  REQUIRE(p.exitCode() == 0);
  MainWindow w;
  w.show();
  ready(w);
  w.openRunFolder(dir.filePath("sw"));
  REQUIRE(w.sweepOpen());
  CHECK(w.tabs()->currentWidget() == w.sweepView());
  const auto& data = w.sweepView()->plotData();
  REQUIRE(data.series.size() == 2);
  CHECK(data.x_key == "model.n_heads");
  // Each point is the mean (and min/max) of the two seeds' final validation loss in summary.csv.
  const auto sum = qk::read_csv_table(dir.filePath("sw/summary.csv").toStdString());
  const int loss = sum.column("final_val_loss"), heads = sum.column("model.n_heads"), var = sum.column("variant");
  for (const auto& s : data.series) {
    REQUIRE(s.x.size() == 2);
    for (size_t i = 0; i < s.x.size(); ++i) {
      std::vector<double> v;
      for (const auto& r : sum.rows)
        if (QString::fromStdString(r[var]) == s.variant && std::stod(r[heads]) == s.x[i]) v.push_back(std::stod(r[loss]));
      REQUIRE(v.size() == 2);
      CHECK(s.mean[i] == Approx((v[0] + v[1]) / 2));
      CHECK(s.lo[i] == Approx(std::min(v[0], v[1])));
      CHECK(s.hi[i] == Approx(std::max(v[0], v[1])));
    }
  }
  // Export: a full-size PNG with its whole title, and the CSV behind it (4 points + header).
  QTemporaryDir out;
  CHECK(w.exportViewTo(out.filePath("sweep.png")).isEmpty());
  CHECK(QImage(out.filePath("sweep.png")).size() == QSize(1600, 1000));
  const auto figs = w.sweepView()->figures();
  REQUIRE(figs.size() == 1);
  const auto r = qkui::export_figure(figs[0], out.filePath("again.png"));
  CHECK(r.title_width <= r.plot_width);
  CHECK(w.exportViewTo(out.filePath("sweep.csv")).isEmpty());
  QFile csv(out.filePath("sweep.csv"));
  REQUIRE(csv.open(QIODevice::ReadOnly));
  const auto lines = QString(csv.readAll()).trimmed().split('\n');
  CHECK(lines.size() == 5);
  CHECK(lines[0].startsWith("model.n_heads,series,seeds,final_val_loss_mean"));
  // Clicking the first point of the first series opens its run folder.
  auto* plot = w.sweepView()->findChild<QCustomPlot*>();
  REQUIRE(plot);
  QTest::qWait(200);
  const auto& s0 = data.series[0];
  const QPoint at(int(plot->xAxis->coordToPixel(s0.x[0])), int(plot->yAxis->coordToPixel(s0.mean[0])));
  QTest::mouseClick(plot, Qt::LeftButton, {}, at);
  CHECK(wait_until([&] { return w.info().run_dir == s0.run[0]; }, 10000));
  // Against tokens seen: the learning curves, one per variant and head count; each ends at the mean
  // final loss of its seeds; against training FLOPs the same points at tokens × FLOPs per token.
  auto* xkey = w.sweepView()->findChild<QComboBox*>("sweepKey");
  REQUIRE(xkey);
  xkey->setCurrentIndex(xkey->findData(qkui::kTokensAxis));
  const auto curves = w.sweepView()->plotData();
  CHECK(curves.curves);
  REQUIRE(curves.series.size() == 4);
  const int flops = sum.column("flops_per_token");
  for (const auto& s : curves.series) {
    REQUIRE(s.x.size() == 4);  // steps 0, 10, 20, 29
    const auto m = qk::read_metrics_csv((s.run.back() + "/metrics.csv").toStdString());
    CHECK(s.x.back() == double(m.back().tokens_seen));
    CHECK(m.back().tokens_seen > 0);
    std::vector<double> v;
    double fpt = 0;
    for (const auto& r : sum.rows)
      if (s.label == QString("%1 n_heads=%2").arg(QString::fromStdString(r[var]), QString::fromStdString(r[heads]))) {
        v.push_back(std::stod(r[loss]));
        fpt = std::stod(r[flops]);
      }
    REQUIRE(v.size() == 2);
    CHECK(s.mean.back() == Approx((v[0] + v[1]) / 2));
    CHECK(s.hi.back() == Approx(std::max(v[0], v[1])));
    CHECK(s.seeds.back() == 2);
    xkey->setCurrentIndex(xkey->findData(qkui::kFlopsAxis));
    const auto by_flops = w.sweepView()->plotData();
    for (const auto& f : by_flops.series)
      if (f.label == s.label) CHECK(f.x.back() == Approx(s.x.back() * fpt));
    xkey->setCurrentIndex(xkey->findData(qkui::kTokensAxis));
  }
  CHECK(w.exportViewTo(out.filePath("curves.png")).isEmpty());
  CHECK(QImage(out.filePath("curves.png")).size() == QSize(1600, 1000));
  // `qklab-cli report SWEEP_DIR`: a figure per metric at full size, the points as CSV, the aggregate table.
  QProcess rep;
  rep.start(QKLAB_CLI, {"report", dir.filePath("sw"), "--out", out.filePath("rep")});
  REQUIRE(rep.waitForFinished(120000));
  INFO(rep.readAllStandardError().toStdString());
  REQUIRE(rep.exitCode() == 0);
  CHECK(QImage(out.filePath("rep/sweep_final_val_loss.png")).size() == QSize(1600, 1000));
  CHECK(QImage(out.filePath("rep/sweep_final_val_acc.png")).size() == QSize(1600, 1000));
  QFile pts(out.filePath("rep/sweep_final_val_loss.csv"));
  REQUIRE(pts.open(QIODevice::ReadOnly));
  CHECK(QString(pts.readAll()).trimmed().split('\n').size() == 5);
  QFile html(out.filePath("rep/index.html"));
  REQUIRE(html.open(QIODevice::ReadOnly));
  const QString page = html.readAll();
  CHECK(page.contains("<h2>Aggregate over seeds</h2>"));
  CHECK(page.count("<tr><td style=") == 4);  // standard and merged at 2 and 4 heads
  CHECK(page.contains("8 runs: 2 variants × 2 model.n_heads × 2 seeds; 8 finished"));
  CHECK(page.contains("perplexity (mean, min–max)"));
  // The learning curves against tokens and training FLOPs: each variant at its best head count (2
  // series × 4 evaluations); every curve is in curves.csv (4 series × 4).
  for (const char* f : {"curves_val_loss_tokens", "curves_val_loss_flops"}) {
    CHECK(QImage(out.filePath(QString("rep/%1.png").arg(f))).size() == QSize(1600, 1000));
    QFile c(out.filePath(QString("rep/%1.csv").arg(f)));
    REQUIRE(c.open(QIODevice::ReadOnly));
    const auto rows = QString(c.readAll()).trimmed().split('\n');
    CHECK(rows.size() == 9);
    // The series kept is the variant's lowest final mean loss of the aggregate.
    std::map<QString, double> lowest;
    const auto agg = qk::read_csv_table(dir.filePath("sw/aggregate.csv").toStdString());
    for (const auto& r : agg.rows) {
      const QString v = QString::fromStdString(r[agg.column("variant")]);
      const double m = std::stod(r[agg.column("final_val_loss_mean")]);
      if (!lowest.count(v) || m < lowest[v]) lowest[v] = m;
    }
    for (const auto& line : rows.mid(1)) {
      const auto cells = line.split(',');
      if (cells[0].toDouble() == rows.last().split(',')[0].toDouble() && cells[0].toDouble() > 0) {  // the last step
        const QString v = cells[1].section(' ', 0, 0);
        CHECK(cells[3].toDouble() == Approx(lowest[v]).epsilon(1e-6));
      }
    }
  }
  QFile all(out.filePath("rep/curves.csv"));
  REQUIRE(all.open(QIODevice::ReadOnly));
  CHECK(QString(all.readAll()).trimmed().split('\n').size() == 17);
  CHECK(page.contains("curves_val_loss_flops.png"));
  // A broken sweep.json: one message, no crash.
  QTemporaryDir bad;
  QFile b(bad.filePath("sweep.json"));
  REQUIRE(b.open(QIODevice::WriteOnly));
  b.write("{not json");
  b.close();
  w.openRunFolder(bad.path());
  CHECK(wait_until([&] { return w.lastError().contains("malformed JSON"); }, 5000));
}

TEST_CASE("a fresh window: 'before training' in the log — points at step 0 — task samples with targets and predictions", "[ui][fresh]") {
  MainWindow w;
  w.show();
  ready(w);
  // The evaluation before any step reads "before training", and is drawn at step 0 on a sensible axis.
  auto* log = w.findChild<QPlainTextEdit*>("log");
  REQUIRE(log);
  REQUIRE(wait_until([&] { return log->toPlainText().contains("before training"); }, 10000));
  CHECK(!log->toPlainText().contains("step -1"));
  auto* plot = w.lossPlot()->findChild<QCustomPlot*>();
  REQUIRE(plot);
  REQUIRE(wait_until([&] { return !w.lossPlot()->rows().empty(); }, 10000));
  QTest::qWait(300);
  CHECK(plot->xAxis->range().lower < 0.0);
  CHECK(plot->xAxis->range().lower > -1.0);  // step 0 at the left edge, not the middle of −2…2
  CHECK(plot->xAxis->range().upper >= 10.0);
  bool visible_point = false;
  for (int g = 0; g < plot->graphCount(); ++g)
    visible_point = visible_point || (plot->graph(g)->dataCount() == 1 &&
                                      plot->graph(g)->scatterStyle().shape() != QCPScatterStyle::ssNone);
  CHECK(visible_point);
  // The Samples tab of a synthetic task shows validation sequences with targets and predictions
  // without the user pressing anything.
  w.showView("samples");
  auto* samples = w.findChild<qkui::SamplesView*>();
  REQUIRE(samples);
  CHECK(wait_until([&] { return samples->contents().contains("target") && samples->contents().contains("predicted"); },
                   10000));
}

TEST_CASE("the Rank view says which step its truncation curve is from — and that it is stale while training moves on", "[ui][stale]") {
  MainWindow w;
  w.show();
  ready(w);
  w.showView("rank");
  auto* rank = w.findChild<qkui::RankView*>();
  REQUIRE(rank);
  // Computed when the experiment loads: at step 0.
  REQUIRE(wait_until([&] { return rank->truncationStatus().contains("at step 0"); }, 20000));
  CHECK(!rank->truncationStale());
  w.showView("loss");  // train with another tab shown: the curve is not recomputed meanwhile
  w.findChild<QAction*>("start")->trigger();
  REQUIRE(wait_until([&] { return w.stepsDone() > 50; }, 30000));
  CHECK(wait_until([&] { return rank->truncationStale(); }, 5000));
  CHECK(rank->truncationStatus().contains("stale: training is at step"));
  const auto figs = rank->figures();
  REQUIRE(!figs.isEmpty());
  CHECK(figs[0].title.contains("(models at step 0, seed"));
  // Paused and the tab shown again, the curve is recomputed on the current models: no longer stale.
  w.pause();
  REQUIRE(wait_until([&] { return !w.isRunning(); }, 5000));
  QTest::qWait(300);
  const QString now = QString("at step %1").arg(w.stepsDone());
  w.showView("rank");
  CHECK(wait_until([&] { return rank->truncationStatus().contains(now) && !rank->truncationStale(); }, 60000));
}

TEST_CASE("the experiment panel proposes budget-matched sizes for the later variants", "[ui][match]") {
  MainWindow w;
  w.show();
  ready(w);
  auto* panel = w.findChild<qkui::ExperimentPanel*>();
  REQUIRE(panel);
  const QString text = panel->estimateText();
  INFO(text.toStdString());
  // The default pair (standard, merged): merged at standard's parameters and at its FLOPs, each
  // with the knob, its value and the remaining gap.
  QRegularExpression params("merged at standard's params: (n_layers|emb_dim|n_heads)=\\d+ \\([+-]\\d+\\.\\d%\\)");
  QRegularExpression flops("merged at standard's FLOPs: (n_layers|emb_dim|n_heads)=\\d+ \\([+-]\\d+\\.\\d%\\)");
  CHECK(params.match(text).hasMatch());
  CHECK(flops.match(text).hasMatch());
}

TEST_CASE("a prepared tokens folder opens from its folder, its meta.json or a drop, and trains", "[ui][tokens]") {
  QTemporaryDir tmp;
  const std::string dir = tmp.path().toStdString();
  std::string text;
  for (int i = 0; i < 3000; ++i) text += (i % 7 ? "query key " : "merged form\n");
  qk::write_file_atomic(dir + "/t.txt", text);
  const std::string out_dir = dir + "/tok";  // as a user would: qklab-cli prepare
  REQUIRE(std::system((std::string(QKLAB_CLI) + " prepare " + dir + "/t.txt --tokenizer char --out " + out_dir + " > /dev/null").c_str()) == 0);
  const int64_t vocab = nlohmann::json::parse(qk::read_file_bytes(out_dir + "/meta.json", "meta"))["vocab_size"];
  const QString folder = QString::fromStdString(out_dir);
  CHECK(qkui::ExperimentPanel::tokensFolderOf(folder) == folder);
  CHECK(qkui::ExperimentPanel::tokensFolderOf(folder + "/meta.json") == folder);
  CHECK(qkui::ExperimentPanel::tokensFolderOf(folder + "/train.bin") == folder);
  CHECK(qkui::ExperimentPanel::tokensFolderOf(QString::fromStdString(dir + "/t.txt")).isEmpty());
  CHECK(qkui::ExperimentPanel::tokensFolderOf(tmp.path()).isEmpty());  // a folder without train.bin
  MainWindow w;
  w.show();
  ready(w);
  // The corpus picker hands over the folder's meta.json: the experiment becomes a tokens run.
  w.experimentPanel()->setCorpus(folder + "/meta.json");
  const auto c = w.experimentPanel()->config();
  CHECK(c.data.kind == "tokens");
  CHECK(c.data.path == out_dir);
  CHECK(c.train.epochs == 0);
  w.openCorpus(folder);
  REQUIRE(wait_until([&] { return w.info().config.data.kind == "tokens" && w.info().total_steps > 0; }, 20000));
  CHECK(w.info().config.model.vocab_size == vocab);
  w.findChild<QAction*>("step")->trigger();
  REQUIRE(wait_until([&] { return w.stepsDone() == 1; }, 20000));
  // A folder that is not one: the menu's check names it (the panel keeps its experiment).
  CHECK(qkui::ExperimentPanel::tokensFolderOf(QString::fromStdString(dir + "/nowhere")).isEmpty());
}

TEST_CASE("sweep figures: a text-valued key is categorical, and too many series pool the other keys per seed", "[ui][sweep]") {
  // 2 variants x 2 tasks x 7 widths x 2 seeds: 14 series (variant x width) would not fit a legend.
  const auto spec = qk::parse_sweep_spec(
      R"({"preset": "projections-copy", "variants": ["standard", "merged"],
          "grid": {"data.kind": ["enc-sort", "enc-copy"], "model.emb_dim": [16, 32, 48, 64, 80, 96, 112]},
          "seeds": [1, 2]})",
      "test");
  std::vector<qk::SweepRow> rows;
  const std::vector<std::string> kinds{"enc-sort", "enc-copy"};
  for (const char* v : {"standard", "merged"})
    for (int k = 0; k < 2; ++k)
      for (int w = 0; w < 7; ++w)
        for (int seed : {1, 2}) {
          qk::SweepRow r;
          r.run = std::string(v) + "_" + kinds[k] + "_" + std::to_string(w) + "_" + std::to_string(seed);
          r.variant = v;
          r.seed = seed;
          r.values = {{"data.kind", kinds[k]}, {"model.emb_dim", std::to_string(16 * (w + 1))}};
          // accuracy = 0.5 + 0.1·task + 0.01·width index + 0.001·seed (+0.2 for merged)
          r.final_val_acc = 0.5 + 0.1 * k + 0.01 * w + 0.001 * seed + (std::string(v) == "merged" ? 0.2 : 0.0);
          r.final_val_loss = 1.0;
          rows.push_back(r);
        }
  const auto p = qkui::sweep_plot(rows, spec, "data.kind", "final_val_acc", true, "/nowhere");
  CHECK(p.categories == QStringList({"enc-sort", "enc-copy"}));  // the spec's order
  CHECK_FALSE(p.log_x);
  CHECK(p.pooled);
  CHECK(p.title.contains("each seed: mean over the other swept keys"));
  REQUIRE(p.series.size() == 2);
  const auto& s = p.series[1];
  CHECK(s.label == "merged");
  REQUIRE(s.x == std::vector<double>{0.0, 1.0});
  // enc-copy (k = 1): per seed the mean over the 7 widths = 0.5 + 0.1 + 0.03 + 0.001·seed + 0.2.
  CHECK(s.mean[1] == Approx(0.8315).margin(1e-12));
  CHECK(s.lo[1] == Approx(0.831).margin(1e-12));
  CHECK(s.hi[1] == Approx(0.832).margin(1e-12));
  CHECK(s.seeds[1] == 2);
  CHECK(qkui::sweep_csv(p).contains("enc-copy,merged,2,"));
  // Few series: no pooling, numeric x as before.
  std::vector<qk::SweepRow> few(rows.begin(), rows.begin() + 4);
  const auto q = qkui::sweep_plot(few, spec, "model.emb_dim", "final_val_acc", false, "/nowhere");
  CHECK_FALSE(q.pooled);
  CHECK(q.categories.isEmpty());
}
