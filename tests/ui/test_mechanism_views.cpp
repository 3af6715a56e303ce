// QKLab UI tests — the Geometry, Circuits and Ablation views, reached the way a user does: a run
// folder opened and the tab clicked (no other tab opened first), the analysis arriving from the
// worker with its step and seed, tables and read-outs by content, every figure exported (PNG at
// its own size, CSV rows), and a live run marking the results stale as training moves on.
#include <catch2/catch.hpp>

#include <QAction>
#include <QImage>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QThread>
#include <QToolButton>

#include <atomic>
#include <QTableWidget>
#include <QTemporaryDir>

#include "ablation_view.h"
#include "circuits_view.h"
#include "figure_export.h"
#include "geometry_view.h"
#include "training_worker.h"
#include "ui_helpers.h"

using namespace qkt_ui;

namespace {
int csv_rows(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return -1;
  return int(f.readAll().count('\n')) - 1;
}
}  // namespace

TEST_CASE("a run folder's Geometry — Circuits and Ablation tabs compute — show and export both variants", "[ui][mechanisms]") {
  QTemporaryDir run, out;
  write_run(run.path(), 60, 1);
  MainWindow w;
  w.show();
  w.openRunFolder(run.path());
  REQUIRE(wait_until([&] { return !w.info().run_dir.isEmpty(); }, 20000));
  const int L = w.info().layers, H = w.info().heads;

  w.showView("geometry");
  auto* geo = w.geometryView();
  REQUIRE(wait_until([&] { return !geo->geometry().empty(); }, 60000));
  CHECK(geo->status().contains("at step 60"));
  CHECK(geo->geometry().size() == 2);
  auto* table = geo->findChild<QTableWidget*>("geometryTable");
  REQUIRE(table);
  CHECK(table->rowCount() == 2 * L * (H + 1));
  CHECK(table->item(0, 2)->text().startsWith("all"));
  for (const auto& v : geo->geometry())
    for (const auto& r : v.rows) CHECK(std::abs(r.symmetry) <= 1.0);
  CHECK(!geo->esd().empty());
  REQUIRE(w.exportViewTo(out.filePath("geometry.png")).isEmpty());
  CHECK(QImage(out.filePath("geometry.png")).size() == QSize(1600, 1000));
  REQUIRE(w.exportViewTo(out.filePath("geometry.csv")).isEmpty());
  const auto gfigs = geo->figures();
  REQUIRE(gfigs.size() == 3);
  for (const auto& f : gfigs) {
    CHECK(f.title.contains("(step 60, seed"));
    const auto r = qkui::export_figure(f, out.filePath(f.name + ".png"));
    CHECK(r.error.isEmpty());
    CHECK(r.title_width <= r.plot_width);  // titles not cut off
  }

  w.showView("circuits");
  auto* circ = w.circuitsView();
  REQUIRE(wait_until([&] { return !circ->circuits().empty(); }, 60000));
  CHECK(circ->readoutText().contains("QK circuit"));
  CHECK(circ->readoutText().contains("OV circuit"));
  CHECK(circ->readoutText().contains("merged · layer 0 head 0"));
  CHECK(circ->circuits()[0].composition.size() == size_t(3 * H * H * L * (L - 1) / 2));
  REQUIRE(w.exportViewTo(out.filePath("circuits.csv")).isEmpty());
  CHECK(csv_rows(out.filePath("circuits.csv")) == 2 * 3 * H * H * L * (L - 1) / 2);

  w.showView("ablation");
  auto* abl = w.ablationView();
  REQUIRE(wait_until([&] { return !abl->ablation().empty(); }, 120000));
  CHECK(abl->status().contains("at step 60"));
  for (const auto& v : abl->ablation()) {
    CHECK(v.zero_loss.size() == size_t(L * H));
    CHECK(v.patch_restored.size() == size_t(L * H));
    CHECK(std::isfinite(v.base_loss));
  }
  REQUIRE(w.exportViewTo(out.filePath("ablation.png")).isEmpty());
  CHECK(QImage(out.filePath("ablation.png")).size() == QSize(1600, 1000));
  REQUIRE(w.exportViewTo(out.filePath("ablation.csv")).isEmpty());
  CHECK(csv_rows(out.filePath("ablation.csv")) > 2 * L * H * 2);  // zero, mean and rank rows
  CHECK(!w.analysisBusy());
}

TEST_CASE("a live run's Geometry is stamped with its step and marked stale as training moves on", "[ui][mechanisms][stale]") {
  MainWindow w;
  w.show();
  ready(w);
  w.showView("geometry");
  auto* geo = w.geometryView();
  REQUIRE(wait_until([&] { return !geo->geometry().empty(); }, 30000));
  CHECK(geo->status().contains("at step 0"));
  w.showView("loss");
  w.findChild<QAction*>("start")->trigger();
  REQUIRE(wait_until([&] { return w.stepsDone() > 30; }, 30000));
  CHECK(wait_until([&] { return geo->status().contains("stale"); }, 5000));
  w.pause();
  REQUIRE(wait_until([&] { return !w.workerRunning(); }, 10000));
  const QString now = QString("at step %1").arg(w.stepsDone());
  w.showView("geometry");  // shown again after training moved on: recomputed
  CHECK(wait_until([&] { return geo->status().contains(now) && !geo->status().contains("stale"); }, 30000));
}

TEST_CASE("Cancel stops an ablation in progress — nothing is kept — Compute starts it again", "[ui][mechanisms][cancel]") {
  QTemporaryDir run;
  write_run(run.path(), 60, 1);
  MainWindow w;
  w.show();
  w.openRunFolder(run.path());
  REQUIRE(wait_until([&] { return !w.info().run_dir.isEmpty(); }, 20000));
  auto* worker = w.worker();
  std::atomic<bool> held{false};
  // On the worker's thread, at the ablation's first tick: wait there until Cancel is pressed, so the
  // press lands mid-analysis whatever the machine's speed (the test waits on states, not on time).
  auto hold = QObject::connect(
      worker, &qkui::TrainingWorker::analysisProgress, worker,
      [&](int done, int total, const QString& kind) {
        if (kind == "ablation" && done == 1 && total > 2 && !held.exchange(true))
          for (int i = 0; i < 6000 && !worker->analysisCancelRequested(); ++i) QThread::msleep(10);
      },
      Qt::DirectConnection);
  w.showView("ablation");  // a small model's ablation starts when its tab is shown
  auto* cancel = w.findChild<QToolButton*>("cancelAnalysis");
  REQUIRE(cancel);
  REQUIRE(wait_until([&] { return cancel->isVisible() && held.load(); }, 60000));
  cancel->click();
  REQUIRE(wait_until([&] { return !w.analysisBusy() && !cancel->isVisible(); }, 60000));
  CHECK(w.lastError().contains("ablation cancelled"));
  CHECK(w.ablationView()->ablation().empty());
  QObject::disconnect(hold);
  auto* compute = w.findChild<QPushButton*>("compute_ablation");
  REQUIRE(compute);
  compute->click();
  REQUIRE(wait_until([&] { return !w.ablationView()->ablation().empty(); }, 120000));
  CHECK(w.ablationView()->ablation().size() == 2);
  CHECK(!w.analysisBusy());
  CHECK(!cancel->isVisible());
}
