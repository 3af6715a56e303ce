// QKLab UI tests — the Lens, Attribution, Detectors and Model views, reached the way a user does: a
// run folder opened and the tab clicked, the analysis arriving from the worker with its step and
// seed, read by content (hover texts, the add-up check, the strongest heads), a user-given answer
// pair, the model view's filter and position window, a click on a map opening that head in the
// Attention tab, and every figure exported. And the experiment panel at the default window size:
// every label whole, no horizontal scroll bar.
#include <catch2/catch.hpp>

#include <QCheckBox>
#include <QComboBox>
#include <QDockWidget>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <qcustomplot.h>

#include "attention_view.h"
#include "attribution_view.h"
#include "detectors_view.h"
#include "experiment_panel.h"
#include "figure_export.h"
#include "lens_view.h"
#include "presets.h"
#include "model_view.h"
#include "variants.h"
#include "ui_helpers.h"

using namespace qkt_ui;

namespace {
void export_all(const QList<qkui::Figure>& figs, const QTemporaryDir& out, int want) {
  REQUIRE(figs.size() == want);
  for (const auto& f : figs) {
    INFO(f.name.toStdString());
    CHECK(f.title.contains("(step 60, seed"));
    const auto r = qkui::export_figure(f, out.filePath(f.name + ".png"));
    CHECK(r.error.isEmpty());
    CHECK(r.title_width <= r.plot_width);
    const QImage img(out.filePath(f.name + ".png"));
    CHECK((img.width() == 1600 && img.height() >= 1000));
    CHECK(f.csv().count('\n') > 1);
  }
}
// The centre of the p-th axis rect of a plot, in its pixels.
QPoint centre_of(QCustomPlot* plot, int p) { return plot->axisRects().at(p)->rect().center(); }
}  // namespace

TEST_CASE("a run folder's Lens, Attribution and Detectors tabs compute, show and export both variants", "[ui][lens]") {
  QTemporaryDir run, out;
  write_run(run.path(), 60, 1);
  MainWindow w;
  w.resize(1400, 900);
  w.show();
  w.openRunFolder(run.path());
  REQUIRE(wait_until([&] { return !w.info().run_dir.isEmpty(); }, 20000));
  const int L = w.info().layers, H = w.info().heads;

  w.showView("lens");
  auto* lens = w.lensView();
  REQUIRE(wait_until([&] { return !lens->lens().empty(); }, 60000));
  CHECK(lens->status().contains("at step 60"));
  REQUIRE(lens->lens().size() == 2);
  for (const auto& v : lens->lens()) {
    CHECK(v.layers == L);
    CHECK(v.mean_loss.size() == size_t(L));
    CHECK(v.positions > 0);
    CHECK(v.loss.size() == size_t(L * v.T));
  }
  // A scored cell of the last layer names its target and the top tokens.
  const auto& l0 = lens->lens()[0];
  int scored = -1;
  for (int t = 0; t < l0.T && scored < 0; ++t)
    if (!l0.targets[size_t(t)].empty()) scored = t;
  REQUIRE(scored >= 0);
  const QString cell = lens->cellText(0, L - 1, scored);
  CHECK(cell.contains("→"));
  CHECK(cell.contains("top:"));
  export_all(lens->figures(), out, 4);

  w.showView("attribution");
  auto* attr = w.attributionView();
  REQUIRE(wait_until([&] { return !attr->attribution().empty(); }, 60000));
  CHECK(attr->attribution().size() == 4);  // validation and prompt, per variant
  CHECK(attr->checkText().contains("add up"));
  for (const auto& v : attr->attribution()) {
    CHECK(v.head.size() == size_t(L * H));
    CHECK(v.max_error < 1e-4);
  }
  // The user's own pair: token ids for a task.
  attr->findChild<QLineEdit*>("attributionAnswer")->setText("3");
  attr->findChild<QLineEdit*>("attributionWrong")->setText("5");
  attr->findChild<QPushButton*>("compute_attribution")->click();
  REQUIRE(wait_until([&] {
    for (const auto& v : attr->attribution())
      if (v.source == "prompt" && v.answer == "3" && v.wrong == "5") return true;
    return false;
  }, 60000));
  export_all(attr->figures(), out, 4);
  // A token outside the vocabulary: one line in the log, nothing else lost.
  attr->findChild<QLineEdit*>("attributionAnswer")->setText("100000");
  attr->findChild<QPushButton*>("compute_attribution")->click();
  REQUIRE(wait_until([&] { return w.lastError().contains("outside the vocabulary"); }, 30000));
  CHECK(!attr->attribution().empty());

  w.showView("detectors");
  auto* det = w.detectorsView();
  REQUIRE(wait_until([&] { return !det->detectors().empty(); }, 60000));
  CHECK(det->summaryText().contains("strongest"));
  auto* table = det->findChild<QTableWidget*>("detectorTable");
  REQUIRE(table);
  CHECK(table->rowCount() == 2 * L * H);
  for (const auto& v : det->detectors()) {
    CHECK(v.prev_rep.size() == size_t(L * H));
    CHECK(v.validation_sequences > 0);
    for (double s : v.ind_rep) CHECK((s >= 0 && s <= 1));
  }
  export_all(det->figures(), out, 3);
}

TEST_CASE("the Model view shows every layer × head, filters them, and a click opens one in Attention", "[ui][lens][model]") {
  QTemporaryDir run, out;
  write_run(run.path(), 60, 1);
  MainWindow w;
  w.resize(1400, 900);
  w.show();
  w.openRunFolder(run.path());
  REQUIRE(wait_until([&] { return !w.info().run_dir.isEmpty(); }, 20000));
  const int L = w.info().layers, H = w.info().heads;
  w.showView("model");
  auto* mv = w.modelView();
  REQUIRE(wait_until([&] { return mv->panelCount() == L * H; }, 60000));
  mv->plot()->replot();
  const QString hover = mv->hoverText(centre_of(mv->plot(), 0));
  CHECK(hover.contains("layer 0 head 0"));
  CHECK(hover.contains("query"));

  // The filter: the last layer, heads 1.., positions from 2, four of them.
  mv->setWindow({L - 1, L - 1, 1, H - 1, 2, 4});
  CHECK(mv->panelCount() == H - 1);
  mv->plot()->replot();
  const QPoint first = centre_of(mv->plot(), 0);
  CHECK(mv->headAt(first) == std::pair<int, int>(L - 1, 1));
  const QString h2 = mv->hoverText(first);
  CHECK(h2.contains(QString("layer %1 head 1").arg(L - 1)));
  CHECK((h2.contains("query 3") || h2.contains("query 4")));  // the window's middle: positions 2..5

  // A click opens that head in the Attention tab.
  QTest::mouseClick(mv->plot(), Qt::LeftButton, {}, first);
  CHECK(w.currentView() == static_cast<qkui::LabView*>(w.attentionView()));
  auto* layer = w.attentionView()->findChild<QSpinBox*>("attentionLayer");
  REQUIRE(layer);
  CHECK(layer->value() == L - 1);

  w.showView("model");
  const auto figs = mv->figures();
  REQUIRE(figs.size() == 1);
  const auto r = qkui::export_figure(figs[0], out.filePath("model.png"));
  CHECK(r.error.isEmpty());
  CHECK(figs[0].csv().count('\n') > L * H);
}

TEST_CASE("the experiment panel shows every label whole at the default window size", "[ui][panel]") {
  MainWindow w;
  w.resize(1400, 900);
  w.show();
  ready(w);
  QApplication::processEvents();
  auto* panel = w.experimentPanel();
  auto* scroll = qobject_cast<QScrollArea*>(panel->parentWidget()->parentWidget());
  REQUIRE(scroll);
  CHECK(!scroll->horizontalScrollBar()->isVisible());
  const QRect viewport = scroll->viewport()->rect();
  int checked = 0;
  for (auto* b : panel->findChildren<QCheckBox*>()) {
    if (!b->isVisible()) continue;
    INFO(b->text().toStdString());
    CHECK(b->width() >= b->sizeHint().width());
    const QRect in_view(b->mapTo(scroll->viewport(), QPoint(0, 0)), b->size());
    CHECK(in_view.right() <= viewport.right());
    ++checked;
  }
  for (auto* l : panel->findChildren<QLabel*>()) {
    if (!l->isVisible() || l->wordWrap() || l->text().isEmpty()) continue;
    INFO(l->text().toStdString());
    CHECK(l->width() >= l->sizeHint().width());
    ++checked;
  }
  CHECK(checked >= 8);
  CHECK(panel->findChild<QCheckBox*>("variant_merged-lowrank"));
  CHECK(panel->findChild<QCheckBox*>("variant_identity-query"));
  CHECK(panel->findChild<QCheckBox*>("variant_merged-seed"));
  // Encoders: the causal checkbox follows the config both ways; the token-wise tasks are in the list.
  auto* causal = panel->findChild<QCheckBox*>("causal");
  REQUIRE(causal);
  CHECK(causal->isChecked());
  panel->setConfig(qk::preset_config("projections-swap"));
  CHECK(!causal->isChecked());
  auto c = panel->config();
  CHECK(!c.model.causal);
  CHECK(c.data.kind == "enc-swap");
  CHECK(c.data.train_sequences == 10000);
  causal->setChecked(true);
  CHECK(panel->config().model.causal);
  auto* kind = panel->findChild<QComboBox*>("dataKind");
  REQUIRE(kind);
  for (const char* k : {"enc-copy", "enc-reverse", "enc-sort", "enc-sub", "enc-swap"}) CHECK(kind->findText(k) >= 0);
  // Picking a kind sets the mask to match it: next-token recall is causal, a token-wise task an encoder.
  kind->setCurrentText("recall");
  CHECK(causal->isChecked());
  CHECK(panel->config().data.kind == "recall");
  kind->setCurrentText("enc-reverse");
  CHECK(!causal->isChecked());
  CHECK(!panel->config().model.causal);
}

TEST_CASE("a figure whose legend wraps (all six variants) exports: the report of a six-variant run", "[ui][report]") {
  // The report of a run with every variant crashed here: a wrapped legend's empty cells.
  std::vector<qk::SpectrumView> spectra;
  for (const auto& vi : qk::all_variants())
    for (int h = 0; h < 4; ++h) {
      qk::SpectrumView s;
      s.variant = vi.name;
      s.matrix = vi.matrix_key;
      s.head = h;
      for (int i = 0; i < 16; ++i) s.sigma.push_back(1.0 / (i + 1));
      spectra.push_back(s);
    }
  qkui::Figure f;
  f.name = "spectra_L0";
  f.title = "six variants";
  f.draw = [spectra](QCustomPlot* p) { qkui::draw_spectra_grid(p, spectra, 0, 4, 4, 16); };
  QTemporaryDir out;
  const auto r = qkui::export_figure(f, out.filePath("six.png"));
  CHECK(r.error.isEmpty());
  CHECK(QImage(out.filePath("six.png")).width() == 1600);
}
