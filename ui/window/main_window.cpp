// QKLab ui — main window (see main_window.h).
#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QLineEdit>
#include <QRegularExpression>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QComboBox>
#include <QProgressBar>
#include <QToolButton>
#include <QScrollArea>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QToolBar>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <qcustomplot.h>
#include <unistd.h>

#include "ablation_view.h"
#include "attention_view.h"
#include "attribution_view.h"
#include "circuits_view.h"
#include "detectors_view.h"
#include "geometry_view.h"
#include "lens_view.h"
#include "mechanism_tab.h"
#include "model_view.h"
#include "config.h"
#include "fsutil.h"
#include "study.h"
#include "experiment_panel.h"
#include "format.h"
#include "fsutil.h"
#include "loss_plot.h"
#include "figure_export.h"
#include "presets.h"
#include "report.h"
#include "rank_view.h"
#include "samples_view.h"
#include "sweep_view.h"
#include "spectra_view.h"
#include "training_worker.h"
#include "version_info.h"
using qk::libtorch_version;

namespace qkui {

static QString process_memory() {
  std::ifstream in("/proc/self/statm");
  long pages = 0, resident = 0;
  in >> pages >> resident;
  return QString("%1 MB").arg(double(resident) * sysconf(_SC_PAGESIZE) / 1e6, 0, 'f', 0);
}

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent), worker_(new TrainingWorker) {
  setWindowTitle(tr("QKLab — separate query and key, or merged?"));
  setObjectName("MainWindow");
  setAcceptDrops(true);
  resize(1400, 860);

  tabs_ = new QTabWidget(this);
  tabs_->setObjectName("views");
  loss_ = new LossPlot(tabs_);
  attention_ = new AttentionView(tabs_);
  spectra_ = new SpectraView(tabs_);
  rank_ = new RankView(tabs_);
  geometry_ = new GeometryView(tabs_);
  circuits_ = new CircuitsView(tabs_);
  ablation_ = new AblationView(tabs_);
  lens_ = new LensView(tabs_);
  attribution_ = new AttributionView(tabs_);
  detectors_ = new DetectorsView(tabs_);
  model_ = new ModelView(tabs_);
  samples_ = new SamplesView(tabs_);
  sweep_ = new SweepView(tabs_);
  connect(sweep_, &SweepView::openRunRequested, this, [this](const QString& d) { openRunFolder(d); });
  // A new view: one more entry here (a mechanism tab is wired to the worker below, by its type).
  views_ = {loss_,     attention_, model_,       spectra_,   rank_,    geometry_, circuits_,
            ablation_, lens_,      attribution_, detectors_, samples_, sweep_};
  for (auto* v : views_) tabs_->addTab(v->widget(), v->viewTitle());
  setCentralWidget(tabs_);

  panel_ = new ExperimentPanel(this);
  auto* pdock = new QDockWidget(tr("Experiment"), this);
  pdock->setObjectName("experimentDock");
  auto* scroll = new QScrollArea(pdock);
  scroll->setWidget(panel_);
  scroll->setWidgetResizable(true);
  scroll->setMinimumWidth(340);
  pdock->setWidget(scroll);
  addDockWidget(Qt::LeftDockWidgetArea, pdock);
  log_ = new QPlainTextEdit(this);
  log_->setObjectName("log");
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(5000);
  auto* ldock = new QDockWidget(tr("Log"), this);
  ldock->setObjectName("logDock");
  ldock->setWidget(log_);
  addDockWidget(Qt::BottomDockWidgetArea, ldock);

  info_label_ = new QLabel(this);
  rate_label_ = new QLabel(this);
  eta_label_ = new QLabel(this);
  mem_label_ = new QLabel(this);
  step_label_ = new QLabel(tr("step 0/0"), this);
  progress_ = new QProgressBar(this);
  progress_->setMaximumWidth(200);
  report_progress_ = new QProgressBar(this);
  report_progress_->setMaximumWidth(260);
  report_progress_->setFormat(tr("report %p%"));
  report_progress_->setVisible(false);
  statusBar()->addPermanentWidget(report_progress_);
  cancel_analysis_ = new QToolButton(this);  // stops a long analysis (ablation, circuits) at its next step
  cancel_analysis_->setObjectName("cancelAnalysis");
  cancel_analysis_->setText(tr("Cancel"));
  cancel_analysis_->setToolTip(tr("Cancel the analysis in progress"));
  cancel_analysis_->setVisible(false);
  statusBar()->addPermanentWidget(cancel_analysis_);
  connect(cancel_analysis_, &QToolButton::clicked, this, [this] { worker_->cancelAnalysis(); });
  statusBar()->addWidget(info_label_, 1);
  for (auto* w : {rate_label_, eta_label_, mem_label_, step_label_}) statusBar()->addPermanentWidget(w);
  statusBar()->addPermanentWidget(progress_);

  worker_->moveToThread(&thread_);
  connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
  connect(worker_, &TrainingWorker::configured, this, &MainWindow::onConfigured);
  connect(worker_, &TrainingWorker::snapshot, this, &MainWindow::onSnapshot);
  connect(worker_, &TrainingWorker::analysis, this, &MainWindow::onAnalysis);
  connect(worker_, &TrainingWorker::failed, this, &MainWindow::onFailed);
  connect(worker_, &TrainingWorker::reportReady, this, &MainWindow::onReportReady);
  connect(worker_, &TrainingWorker::reportProgress, this, [this](int done, int total, const QString& what) {
    report_progress_->setRange(0, 2 * std::max(total, 1));  // analyses, then drawing
    report_progress_->setValue(done);
    report_progress_->setToolTip(what);
    statusBar()->showMessage(tr("Report: %1").arg(what), 2000);
  });
  connect(worker_, &TrainingWorker::analysisProgress, this, [this](int done, int total, const QString& what) {
    // Long analyses (ablation, circuits) show their progress in the status bar's second bar.
    analysis_busy_ = done < total;
    report_progress_->setVisible(done < total);
    cancel_analysis_->setVisible(done < total);
    report_progress_->setFormat(tr("%1 %p%").arg(what));
    report_progress_->setRange(0, std::max(total, 1));
    report_progress_->setValue(done);
  });
  thread_.setObjectName("qklab-training");
  thread_.start();

  // Views ask the worker; the worker answers with values.
  connect(panel_, &ExperimentPanel::applyRequested, this, &MainWindow::loadExperiment);
  connect(panel_, &ExperimentPanel::notice, this, [this](const QString& m) { log_->appendPlainText(m); });
  connect(attention_, &AttentionView::attentionRequested, worker_, &TrainingWorker::requestAttention);
  connect(spectra_, &SpectraView::spectraRequested, worker_, &TrainingWorker::requestSpectra);
  connect(rank_, &RankView::truncationRequested, worker_, &TrainingWorker::requestTruncation);
  for (auto* v : views_)
    if (auto* m = dynamic_cast<MechanismTab*>(v))
      connect(m, &MechanismTab::mechanismsRequested, worker_, &TrainingWorker::requestMechanisms);
  connect(model_, &ModelView::attentionRequested, worker_, &TrainingWorker::requestAttention);
  connect(model_, &ModelView::headOpened, this, [this](int layer, int head) {
    attention_->setLayerHead(layer, head);
    tabs_->setCurrentWidget(attention_);
  });
  connect(samples_, &SamplesView::samplesRequested, worker_, &TrainingWorker::requestSamples);
  connect(tabs_, &QTabWidget::currentChanged, this, [this] { requestViews(true); });

  buildMenus();
  QSettings s;
  restoreGeometry(s.value("window/geometry").toByteArray());
  restoreState(s.value("window/state").toByteArray());
  loadExperiment(qk::preset_config("default"));
}

ExportOptions MainWindow::exportOptions() const {
  ExportOptions o;
  QSettings s;
  o.size = s.value("export/size", o.size).toSize();
  o.png_scale = s.value("export/scale", o.png_scale).toDouble();
  return o;
}

bool MainWindow::setExportSize(const QString& spec) {
  static const QRegularExpression re(R"(^\s*(\d+)\s*[xX×]\s*(\d+)\s*(?:@\s*([0-9.]+))?\s*$)");
  const auto m = re.match(spec);
  if (!m.hasMatch()) return false;
  const int w = m.captured(1).toInt(), h = m.captured(2).toInt();
  const double scale = m.captured(3).isEmpty() ? 2.0 : m.captured(3).toDouble();
  if (w < 100 || h < 100 || w > 20000 || h > 20000 || !(scale >= 0.5 && scale <= 8)) return false;
  QSettings s;
  s.setValue("export/size", QSize(w, h));
  s.setValue("export/scale", scale);
  log_->appendPlainText(tr("Exports: %1×%2 px at %3 pixels per point").arg(w).arg(h).arg(scale));
  return true;
}

LabView* MainWindow::currentView() const {
  for (auto* v : views_)
    if (v->widget() == tabs_->currentWidget()) return v;
  return nullptr;
}

QStringList MainWindow::viewNames() const {
  QStringList names;
  for (auto* v : views_) names << v->viewName();
  return names;
}

bool MainWindow::showView(const QString& name) {
  for (auto* v : views_)
    if (v->viewName() == name) {
      tabs_->setCurrentWidget(v->widget());
      return true;
    }
  return false;
}

MainWindow::~MainWindow() {
  worker_->stop_flag() = true;
  QMetaObject::invokeMethod(worker_, [w = worker_] { w->shutdown(); }, Qt::BlockingQueuedConnection);
  thread_.quit();
  thread_.wait();
}

void MainWindow::loadExperiment(const qk::ExperimentConfig& config) {
  steps_done_ = 0;
  finished_ = false;
  last_error_.clear();
  setRunning(false);
  panel_->setConfig(config);
  QMetaObject::invokeMethod(worker_, [w = worker_, config] { w->configure(config); }, Qt::QueuedConnection);
}

bool MainWindow::openExperimentFile(const QString& path) {
  try {
    auto cfg = qk::load_config_file(path.toStdString());
    qk::validate_config(cfg, path.toStdString());
    addRecent(path);
    loadExperiment(cfg);
    return true;
  } catch (const std::exception& e) {
    onFailed(QString::fromStdString(e.what()));
    return false;
  }
}

void MainWindow::openConfig() {
  QString f = QFileDialog::getOpenFileName(this, tr("Open experiment"), QString(), tr("Experiment (*.json)"));
  if (!f.isEmpty()) openExperimentFile(f);
}

void MainWindow::saveConfig() {
  QString f = QFileDialog::getSaveFileName(this, tr("Save experiment"), "experiment.json", tr("Experiment (*.json)"));
  if (f.isEmpty()) return;
  try {
    qk::write_file_atomic(f.toStdString(), qk::config_to_json(panel_->config()).dump(2) + "\n");
    addRecent(f);
  } catch (const std::exception& e) {
    onFailed(QString::fromStdString(e.what()));
  }
}

bool MainWindow::sweepOpen() const { return sweep_->isOpen(); }

void MainWindow::openRunFolder(const QString& dir, int seed) {
  if (qk::is_study_dir(dir.toStdString())) {  // a study: its latest started stage in the Sweep view
    try {
      const std::string sf = (dir + "/study.json").toStdString();
      const auto rec = qk::parse_json(qk::read_file_bytes(sf, "study"), sf);
      const auto study = qk::parse_study(rec.is_object() && rec.contains("study") ? rec["study"] : rec, sf);
      QString stage;
      for (const auto& st : study.stages)
        if (qk::is_sweep_dir((dir + "/" + QString::fromStdString(st.name)).toStdString())) stage = QString::fromStdString(st.name);
      if (stage.isEmpty()) return onFailed(dir + ": no stage of the study has started (run `qklab-cli sweep --out " + dir + "`)");
      const QString error = sweep_->openSweep(dir + "/" + stage);
      if (!error.isEmpty()) return onFailed(error);
      addRecent(dir);
      log_->appendPlainText(tr("study %1: showing stage %2 (open %1/STAGE for another; `qklab-cli report %1` for all)")
                                .arg(dir, stage));
      tabs_->setCurrentWidget(sweep_);
    } catch (const std::exception& e) {
      onFailed(QString::fromStdString(e.what()));
    }
    return;
  }
  if (qk::is_sweep_dir(dir.toStdString())) {  // a sweep folder: the Sweep view, not the worker
    const QString error = sweep_->openSweep(dir);
    if (!error.isEmpty()) return onFailed(error);
    addRecent(dir);
    tabs_->setCurrentWidget(sweep_);
    return;
  }
  setRunning(false);
  last_error_.clear();
  addRecent(dir);
  QMetaObject::invokeMethod(worker_, [w = worker_, dir, seed] { w->openRun(dir, seed); }, Qt::QueuedConnection);
}

void MainWindow::resumeRun() {
  if (info_.run_dir.isEmpty()) return;
  const QString dir = info_.run_dir;
  QMetaObject::invokeMethod(worker_, [w = worker_, dir] { w->resumeRun(dir); }, Qt::QueuedConnection);
}

void MainWindow::openCorpus(const QString& path) {
  panel_->setCorpus(path);
  try {
    loadExperiment(panel_->config());
    addRecent(path);
  } catch (const std::exception& e) {
    onFailed(QString::fromStdString(e.what()));
  }
}

void MainWindow::exportCurrentView() {
  LabView* view = currentView();
  const QList<Figure> figs = view ? view->figures() : QList<Figure>();
  if (figs.isEmpty()) return onFailed(tr("This view has nothing to export yet"));
  QString f = QFileDialog::getSaveFileName(this, tr("Export %1").arg(figs[0].title), figs[0].name + ".png",
                                           tr("PNG (*.png);;SVG (*.svg);;PDF (*.pdf);;CSV data (*.csv);;JSON data (*.json)"));
  if (f.isEmpty()) return;
  const QString err = exportViewTo(f);
  if (!err.isEmpty()) onFailed(err);
}

QString MainWindow::exportViewTo(const QString& path) {
  LabView* view = currentView();
  const QList<Figure> figs = view ? view->figures() : QList<Figure>();
  if (figs.isEmpty()) return tr("This view has nothing to export yet");
  const QFileInfo fi(path);
  const QString suffix = fi.suffix().toLower();
  QStringList written;
  for (int i = 0; i < figs.size(); ++i) {
    const QString file = i == 0 ? path : fi.dir().filePath(figs[i].name + "." + suffix);
    QString err;
    if (suffix == "csv" || suffix == "json") {
      if (!figs[i].csv) continue;
      err = save_text(file, suffix == "csv" ? figs[i].csv() : csv_to_json(figs[i].csv()));
    } else {
      err = export_figure(figs[i], file, exportOptions()).error;
    }
    if (!err.isEmpty()) return err;
    written << file;
  }
  log_->appendPlainText(tr("Exported %1").arg(written.join(", ")));
  return QString();
}

void MainWindow::exportReport(const QString& dir) {
  if (!report_dir_.isEmpty()) return onFailed(tr("A report is already being written to %1").arg(report_dir_));
  report_dir_ = dir;
  report_progress_->setRange(0, 0);
  report_progress_->setFormat(tr("report %p%"));
  report_progress_->setVisible(true);
  log_->appendPlainText(tr("Report: computing every head's spectrum, the truncation curve, attention maps and samples…"));
  const QString prompt = attention_->prompt();
  QMetaObject::invokeMethod(worker_, [w = worker_, prompt] { w->requestReport(prompt); }, Qt::QueuedConnection);
}

void MainWindow::onReportReady(const qk::ReportData& data) {
  if (report_dir_.isEmpty()) return;
  const QString dir = report_dir_;
  const int base = report_progress_->maximum() / 2;
  const ReportResult r = write_report(data, dir, exportOptions(), [this, base](int done, int total) {
    report_progress_->setRange(0, 2 * std::max(total, 1));
    report_progress_->setValue(std::max(base, total) + done);
    QCoreApplication::processEvents(QEventLoop::ExcludeUserInputEvents);
  });
  report_dir_.clear();
  last_report_ = r;
  report_progress_->setVisible(false);
  if (!r.error.isEmpty()) onFailed(r.error);
  else log_->appendPlainText(tr("Report written to %1/index.html (%2 figures, step %3, seed %4)")
                                 .arg(dir).arg(r.pngs.size()).arg(data.step).arg(data.seed));
  Q_EMIT reportWritten(dir, r.error);
}

void MainWindow::start() {
  if (finished_) return;
  setRunning(true);
  QMetaObject::invokeMethod(worker_, [w = worker_] { w->start(); }, Qt::QueuedConnection);
}
void MainWindow::pause() {
  setRunning(false);
  QMetaObject::invokeMethod(worker_, [w = worker_] { w->pause(); }, Qt::QueuedConnection);
  requestViews(true);  // paused: the shown view catches up (the truncation curve too)
}
void MainWindow::stepOnce() {
  QMetaObject::invokeMethod(worker_, [w = worker_] { w->stepOnce(); }, Qt::QueuedConnection);
}
void MainWindow::reset() {
  try {
    loadExperiment(panel_->config());
  } catch (const std::exception& e) {
    onFailed(QString::fromStdString(e.what()));
  }
}
void MainWindow::stop() {
  pause();
  finished_ = true;
  start_->setEnabled(false);
  step_->setEnabled(false);
  log_->appendPlainText(tr("Stopped at step %1 (Reset to train again).").arg(steps_done_));
}

void MainWindow::setRunning(bool running) {
  running_ = running;
  start_->setEnabled(!running && !finished_);
  pause_->setEnabled(running);
  step_->setEnabled(!running && !finished_);
  stop_->setEnabled(running);
  panel_->setLocked(running);  // settings that cannot change mid-run are locked
}

void MainWindow::onConfigured(const ExperimentInfo& info) {
  // Signals from the worker arrive in order: everything after this belongs to the new experiment.
  info_ = info;
  loss_->clear();
  steps_done_ = 0;
  QStringList parts;
  for (int i = 0; i < info.variants.size() && i < int(info.parameters.size()); ++i)
    parts << QString("%1: %2 params").arg(info.variants[i]).arg(info.parameters[i]);
  info_label_->setText(info.name + (parts.isEmpty() ? QString() : " — " + parts.join(", ")));
  progress_->setRange(0, int(std::max<qint64>(1, info.total_steps)));
  progress_->setValue(0);
  step_label_->setText(tr("step 0/%1").arg(info.total_steps));
  for (auto* v : views_) v->setExperiment(info);
  seed_box_->blockSignals(true);
  seed_box_->clear();
  for (int seed : info.seeds) seed_box_->addItem(tr("seed %1").arg(seed), seed);
  seed_box_->setCurrentIndex(std::max(0, int(info.seeds.indexOf(info.seed))));
  seed_box_->blockSignals(false);
  seed_action_->setVisible(info.seeds.size() > 1);
  resume_->setEnabled(info.resumable);
  if (info.resumed_at >= 0) {
    finished_ = false;  // a resumed run trains on
    setRunning(false);
  }
  if (!info.run_dir.isEmpty()) {
    finished_ = true;
    setRunning(false);
    log_->appendPlainText(info.seeds.size() > 1 ? tr("Opened run folder %1 (seed %2 of %3 seeds)")
                                                      .arg(info.run_dir).arg(info.seed).arg(info.seeds.size())
                                                : tr("Opened run folder %1").arg(info.run_dir));
    panel_->setConfig(info.config);
  } else {
    log_->appendPlainText(info.resumed_at >= 0
                              ? tr("Resumed %1 after step %2 of %3: press Start").arg(info.save_dir).arg(info.resumed_at).arg(info.total_steps)
                              : tr("Experiment '%1' ready: %2").arg(info.name, parts.join(", ")));
    if (!info.resume_note.isEmpty()) log_->appendPlainText(tr("Warning: %1").arg(info.resume_note));
    if (!info.save_dir.isEmpty())
      log_->appendPlainText(tr("This run is saved to %1 (metrics, config; checkpoints on pause, finish and close)")
                                .arg(info.save_dir));
  }
  requestViews(true);
  Q_EMIT experimentReady();
}

void MainWindow::requestViews(bool force) {
  if (!force && last_views_.isValid() && last_views_.elapsed() < 1000) return;
  last_views_.start();
  if (LabView* v = currentView()) v->refreshView(force || finished_);
}

void MainWindow::onSnapshot(const TrainingSnapshot& s) {
  for (auto* v : views_) v->takeSnapshot(s);
  for (const auto& r : s.evals) {
    // The evaluation before any step has step -1: it reads "before training".
    const QString when = r.step < 0 ? tr("before training") : QString("step %1").arg(r.step);
    QString line = QString("%1  %2  train %3  val %4").arg(when).arg(QString::fromStdString(r.variant), -9)
                       .arg(r.train_loss, 0, 'f', 3).arg(r.val_loss, 0, 'f', 3);
    if (!std::isnan(r.val_acc)) line += QString("  val acc %1").arg(r.val_acc, 0, 'f', 3);
    log_->appendPlainText(line);
  }
  for (const auto& h : s.halts) {  // the divergence guard stopped a variant; the others go on
    log_->appendPlainText(tr("Halted: %1").arg(QString::fromStdString(h.message)));
    statusBar()->showMessage(QString::fromStdString(h.message), 15000);
  }
  for (const auto& smp : s.samples)
    log_->appendPlainText(QString("[%1, epoch %2] %3").arg(QString::fromStdString(smp.variant)).arg(smp.epoch)
                              .arg(QString::fromStdString(smp.text)));
  steps_done_ = s.steps_done;
  worker_running_ = s.running;
  if (s.total_steps > 0 && s.total_steps != progress_->maximum()) progress_->setRange(0, int(s.total_steps));
  progress_->setValue(int(s.steps_done));
  step_label_->setText(tr("step %1/%2").arg(s.steps_done).arg(s.total_steps));
  if (s.tokens_per_s > 0)
    rate_label_->setText(tr("%1 tok/s · %2 ms/step").arg(s.tokens_per_s, 0, 'f', 0).arg(s.seconds_per_step * 1000, 0, 'f', 1));
  if (s.eta_s >= 0) eta_label_->setText(tr("ETA %1").arg(QString::fromStdString(qk::format_duration(s.eta_s))));
  mem_label_->setText(process_memory());
  if (!s.evals.empty()) requestViews(false);
  if (s.finished) {
    finished_ = true;
    setRunning(false);
    requestViews(true);
    Q_EMIT trainingFinished();
  }
}

void MainWindow::onAnalysis(const AnalysisResult& r) {
  for (auto* v : views_) v->takeAnalysis(r);
}

void MainWindow::onFailed(const QString& message) {
  last_error_ = message;
  if (analysis_busy_) {  // an on-request analysis failed: it is over
    analysis_busy_ = false;
    cancel_analysis_->setVisible(false);
    if (report_dir_.isEmpty()) report_progress_->setVisible(false);
  }
  setRunning(false);
  log_->appendPlainText(tr("Error: %1").arg(message));
  statusBar()->showMessage(message, 10000);
  // A cancelled analysis is what the user asked for: the log and the status bar say so, no dialog.
  if (!QApplication::platformName().contains("offscreen") && !message.contains(" cancelled"))
    QMessageBox::warning(this, tr("QKLab"), message);
}

void MainWindow::closeEvent(QCloseEvent* e) {
  worker_->stop_flag() = true;  // the worker stops within one training step
  QSettings s;
  s.setValue("window/geometry", saveGeometry());
  s.setValue("window/state", saveState());
  e->accept();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
  const auto urls = e->mimeData()->urls();
  if (urls.isEmpty()) return;
  const QString f = urls.first().toLocalFile();
  if (!ExperimentPanel::tokensFolderOf(f).isEmpty()) return openCorpus(f);
  if (QFileInfo(f).isDir() || f.endsWith(".safetensors", Qt::CaseInsensitive)) return openRunFolder(f);
  if (f.endsWith(".json", Qt::CaseInsensitive)) openExperimentFile(f);
  else openCorpus(f);
}

}  // namespace qkui
