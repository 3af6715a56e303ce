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
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProgressBar>
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

#include "attention_view.h"
#include "config.h"
#include "experiment_panel.h"
#include "fsutil.h"
#include "loss_plot.h"
#include "plot_export.h"
#include "presets.h"
#include "rank_view.h"
#include "samples_view.h"
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

static QString duration(double s) {
  if (s < 0 || !std::isfinite(s)) return "--:--";
  const int t = int(s + 0.5);
  return t >= 3600 ? QString("%1:%2:%3").arg(t / 3600).arg((t / 60) % 60, 2, 10, QChar('0')).arg(t % 60, 2, 10, QChar('0'))
                   : QString("%1:%2").arg(t / 60).arg(t % 60, 2, 10, QChar('0'));
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
  samples_ = new SamplesView(tabs_);
  tabs_->addTab(loss_, tr("Loss"));
  tabs_->addTab(attention_, tr("Attention"));
  tabs_->addTab(spectra_, tr("Spectra"));
  tabs_->addTab(rank_, tr("Rank analysis"));
  tabs_->addTab(samples_, tr("Samples"));
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
  statusBar()->addWidget(info_label_, 1);
  for (auto* w : {rate_label_, eta_label_, mem_label_, step_label_}) statusBar()->addPermanentWidget(w);
  statusBar()->addPermanentWidget(progress_);

  worker_->moveToThread(&thread_);
  connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
  connect(worker_, &TrainingWorker::configured, this, &MainWindow::onConfigured);
  connect(worker_, &TrainingWorker::snapshot, this, &MainWindow::onSnapshot);
  connect(worker_, &TrainingWorker::analysis, this, &MainWindow::onAnalysis);
  connect(worker_, &TrainingWorker::failed, this, &MainWindow::onFailed);
  thread_.setObjectName("qklab-training");
  thread_.start();

  // Views ask the worker; the worker answers with values.
  connect(panel_, &ExperimentPanel::applyRequested, this, &MainWindow::loadExperiment);
  connect(attention_, &AttentionView::attentionRequested, worker_, &TrainingWorker::requestAttention);
  connect(spectra_, &SpectraView::spectraRequested, worker_, &TrainingWorker::requestSpectra);
  connect(rank_, &RankView::truncationRequested, worker_, &TrainingWorker::requestTruncation);
  connect(samples_, &SamplesView::samplesRequested, worker_, &TrainingWorker::requestSamples);
  connect(tabs_, &QTabWidget::currentChanged, this, [this] { requestViews(true); });

  buildMenus();
  QSettings s;
  restoreGeometry(s.value("window/geometry").toByteArray());
  restoreState(s.value("window/state").toByteArray());
  loadExperiment(QString::fromStdString(qk::config_to_json(qk::preset_config("default")).dump()));
}

MainWindow::~MainWindow() {
  worker_->stop_flag() = true;
  QMetaObject::invokeMethod(worker_, "shutdown", Qt::BlockingQueuedConnection);
  thread_.quit();
  thread_.wait();
}

void MainWindow::buildMenus() {
  auto* tb = addToolBar(tr("Run"));
  tb->setObjectName("runToolbar");
  start_ = tb->addAction(tr("Start"), this, &MainWindow::start);
  start_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
  pause_ = tb->addAction(tr("Pause"), this, &MainWindow::pause);
  pause_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_P));
  step_ = tb->addAction(tr("Step"), this, &MainWindow::stepOnce);
  step_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_T));
  reset_ = tb->addAction(tr("Reset"), this, &MainWindow::reset);
  reset_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_R));
  stop_ = tb->addAction(tr("Stop"), this, &MainWindow::stop);
  stop_->setShortcut(QKeySequence(Qt::Key_Escape));
  for (auto* a : {start_, pause_, step_, reset_, stop_}) {
    a->setObjectName(a->text().toLower());
    a->setToolTip(QString("%1 (%2)").arg(a->text(), a->shortcut().toString()));
  }
  tb->addSeparator();
  tb->addAction(tr("Export report…"), this, [this] {
    QString d = QFileDialog::getExistingDirectory(this, tr("Folder for the report"));
    if (!d.isEmpty()) exportReport(d + "/qklab-report");
  });

  auto* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("Open experiment…"), QKeySequence::Open, this, &MainWindow::openConfig);
  file->addAction(tr("Save experiment…"), QKeySequence::Save, this, &MainWindow::saveConfig);
  file->addAction(tr("Open run folder…"), this, [this] {
    QString d = QFileDialog::getExistingDirectory(this, tr("Open a run folder written by qklab-cli"));
    if (!d.isEmpty()) openRunFolder(d);
  });
  file->addAction(tr("Open text corpus…"), this, [this] {
    QString f = QFileDialog::getOpenFileName(this, tr("Open a UTF-8 text file"));
    if (!f.isEmpty()) openCorpus(f);
  });
  recent_ = file->addMenu(tr("Recent"));
  rebuildRecent();
  file->addSeparator();
  file->addAction(tr("Export current view…"), QKeySequence(Qt::CTRL | Qt::Key_E), this, &MainWindow::exportCurrentView);
  file->addAction(tr("Export report…"), this, [this] {
    QString d = QFileDialog::getExistingDirectory(this, tr("Folder for the report"));
    if (!d.isEmpty()) exportReport(d + "/qklab-report");
  });
  file->addSeparator();
  file->addAction(tr("Quit"), QKeySequence::Quit, this, &QWidget::close);
  auto* run = menuBar()->addMenu(tr("&Run"));
  for (auto* a : {start_, pause_, step_, reset_, stop_}) run->addAction(a);
  auto* view = menuBar()->addMenu(tr("&View"));
  for (auto* d : findChildren<QDockWidget*>()) view->addAction(d->toggleViewAction());
  auto* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("About QKLab"), this, [this] {
    QMessageBox::about(this, tr("About QKLab"),
                       tr("<b>QKLab %1</b><p>Does a transformer need separate query and key matrices? QKLab "
                          "trains standard attention (W<sub>Q</sub>·W<sub>K</sub><sup>T</sup>, rank ≤ head_dim "
                          "per head) and merged attention (one d×d S per head) side by side, fairly, and "
                          "shows how they train.</p><p>Qt %2 · LibTorch %3</p>")
                           .arg(QApplication::applicationVersion(), qVersion(),
                                QString::fromStdString(libtorch_version())));
  });
}

void MainWindow::loadExperiment(const QString& config_json) {
  steps_done_ = 0;
  finished_ = false;
  last_error_.clear();
  setRunning(false);
  try {
    panel_->setConfig(qk::config_from_json(nlohmann::json::parse(config_json.toStdString()), "experiment"));
  } catch (const std::exception& e) {
    onFailed(QString::fromStdString(e.what()));
    return;
  }
  QMetaObject::invokeMethod(worker_, "configure", Qt::QueuedConnection, Q_ARG(QString, config_json));
}

void MainWindow::openConfig() {
  QString f = QFileDialog::getOpenFileName(this, tr("Open experiment"), QString(), tr("Experiment (*.json)"));
  if (f.isEmpty()) return;
  try {
    auto cfg = qk::load_config_file(f.toStdString());
    qk::validate_config(cfg, f.toStdString());
    addRecent(f);
    loadExperiment(QString::fromStdString(qk::config_to_json(cfg).dump()));
  } catch (const std::exception& e) {
    onFailed(QString::fromStdString(e.what()));
  }
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

void MainWindow::openRunFolder(const QString& dir) {
  setRunning(false);
  last_error_.clear();
  addRecent(dir);
  QMetaObject::invokeMethod(worker_, "openRun", Qt::QueuedConnection, Q_ARG(QString, dir));
}

void MainWindow::openCorpus(const QString& path) {
  panel_->setCorpus(path);
  try {
    loadExperiment(QString::fromStdString(qk::config_to_json(panel_->config()).dump()));
    addRecent(path);
  } catch (const std::exception& e) {
    onFailed(QString::fromStdString(e.what()));
  }
}

void MainWindow::addRecent(const QString& path) {
  QSettings s;
  QStringList r = s.value("recent").toStringList();
  r.removeAll(path);
  r.prepend(path);
  while (r.size() > 8) r.removeLast();
  s.setValue("recent", r);
  rebuildRecent();
}

void MainWindow::rebuildRecent() {
  recent_->clear();
  for (const QString& p : QSettings().value("recent").toStringList())
    recent_->addAction(p, this, [this, p] {
      QFileInfo fi(p);
      if (fi.isDir()) openRunFolder(p);
      else if (p.endsWith(".json", Qt::CaseInsensitive)) {
        try {
          auto cfg = qk::load_config_file(p.toStdString());
          loadExperiment(QString::fromStdString(qk::config_to_json(cfg).dump()));
        } catch (const std::exception& e) {
          onFailed(QString::fromStdString(e.what()));
        }
      } else openCorpus(p);
    });
}

void MainWindow::exportCurrentView() {
  QList<Exportable> items;
  QWidget* w = tabs_->currentWidget();
  if (w == loss_) items = loss_->exportables();
  else if (w == attention_) items = attention_->exportables();
  else if (w == spectra_) items = spectra_->exportables();
  else if (w == rank_) items = rank_->exportables();
  if (items.isEmpty()) return onFailed(tr("This view has nothing to export yet"));
  QString f = QFileDialog::getSaveFileName(this, tr("Export %1").arg(items[0].title), items[0].name + ".png",
                                           tr("PNG (*.png);;SVG (*.svg);;PDF (*.pdf);;CSV data (*.csv);;JSON data (*.json)"));
  if (f.isEmpty()) return;
  QString err;
  if (f.endsWith(".csv", Qt::CaseInsensitive)) err = items[0].write_csv(f);
  else if (f.endsWith(".json", Qt::CaseInsensitive)) err = save_text(f, csv_to_json(items[0].csv()));
  else err = export_plot(items[0].plot, f, items[0].title);
  if (!err.isEmpty()) onFailed(err);
}

void MainWindow::exportReport(const QString& dir) {
  QList<Exportable> items = loss_->exportables() + attention_->exportables() + spectra_->exportables() +
                            rank_->exportables();
  QString summary = QString("<p>Experiment <b>%1</b>, step %2 of %3. Variants: %4.</p><p>%5</p>")
                        .arg(info_.name.toHtmlEscaped()).arg(steps_done_).arg(info_.total_steps)
                        .arg(info_.variants.join(", "), panel_->estimateText());
  QString err = export_report(dir, items, QString::fromStdString(nlohmann::json::parse(info_.config_json.toStdString()).dump(2)), summary);
  if (!err.isEmpty()) onFailed(err);
  else log_->appendPlainText(tr("Report written to %1/index.html").arg(dir));
}

void MainWindow::start() {
  if (finished_) return;
  setRunning(true);
  QMetaObject::invokeMethod(worker_, "start", Qt::QueuedConnection);
}
void MainWindow::pause() {
  setRunning(false);
  QMetaObject::invokeMethod(worker_, "pause", Qt::QueuedConnection);
}
void MainWindow::stepOnce() { QMetaObject::invokeMethod(worker_, "stepOnce", Qt::QueuedConnection); }
void MainWindow::reset() {
  try {
    loadExperiment(QString::fromStdString(qk::config_to_json(panel_->config()).dump()));
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
  attention_->setModelShape(info.layers, info.heads, info.text);
  spectra_->setModelShape(info.layers, info.heads, info.emb_dim, info.head_dim, info.variants);
  rank_->reset(info.emb_dim);
  samples_->setText(info.text);
  if (!info.run_dir.isEmpty()) {
    finished_ = true;
    setRunning(false);
    log_->appendPlainText(tr("Opened run folder %1").arg(info.run_dir));
    try {
      panel_->setConfig(qk::config_from_json(nlohmann::json::parse(info.config_json.toStdString()), "run"));
    } catch (const std::exception&) {
    }
  } else {
    log_->appendPlainText(tr("Experiment '%1' ready: %2").arg(info.name, parts.join(", ")));
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
  QWidget* w = tabs_->currentWidget();
  if (w == attention_) attention_->refresh();
  if (w == spectra_) spectra_->refresh();
  if (w == rank_ && (force || finished_)) Q_EMIT rank_->truncationRequested(rank_->ranks());
}

void MainWindow::onSnapshot(const TrainingSnapshot& s) {
  loss_->addEvals(s.evals);
  spectra_->addHistory(s.spectra);
  rank_->addSpectra(s.spectra);
  rank_->addDivergence(s.divergence);
  samples_->addEpochSamples(s.samples);
  for (const auto& r : s.evals) {
    QString line = QString("step %1  %2  train %3  val %4").arg(r.step).arg(QString::fromStdString(r.variant), -9)
                       .arg(r.train_loss, 0, 'f', 3).arg(r.val_loss, 0, 'f', 3);
    if (!std::isnan(r.val_acc)) line += QString("  val acc %1").arg(r.val_acc, 0, 'f', 3);
    log_->appendPlainText(line);
  }
  for (const auto& smp : s.samples)
    log_->appendPlainText(QString("[%1, epoch %2] %3").arg(QString::fromStdString(smp.variant)).arg(smp.epoch)
                              .arg(QString::fromStdString(smp.text)));
  steps_done_ = s.steps_done;
  progress_->setValue(int(s.steps_done));
  step_label_->setText(tr("step %1/%2").arg(s.steps_done).arg(s.total_steps));
  if (s.tokens_per_s > 0)
    rate_label_->setText(tr("%1 tok/s · %2 ms/step").arg(s.tokens_per_s, 0, 'f', 0).arg(s.seconds_per_step * 1000, 0, 'f', 1));
  if (s.eta_s >= 0) eta_label_->setText(tr("ETA %1").arg(duration(s.eta_s)));
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
  if (!r.attention.empty()) attention_->setAttention(r.attention);
  if (!r.spectra.empty()) spectra_->setSpectra(r.spectra);
  if (!r.truncation.empty()) rank_->setTruncation(r.truncation);
  if (!r.samples.empty()) samples_->setSamples(r.samples);
}

void MainWindow::onFailed(const QString& message) {
  last_error_ = message;
  setRunning(false);
  log_->appendPlainText(tr("Error: %1").arg(message));
  statusBar()->showMessage(message, 10000);
  if (!QApplication::platformName().contains("offscreen"))
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
  if (QFileInfo(f).isDir()) return openRunFolder(f);
  if (f.endsWith(".json", Qt::CaseInsensitive)) {
    try {
      auto cfg = qk::load_config_file(f.toStdString());
      qk::validate_config(cfg, f.toStdString());
      loadExperiment(QString::fromStdString(qk::config_to_json(cfg).dump()));
    } catch (const std::exception& ex) {
      onFailed(QString::fromStdString(ex.what()));
    }
  } else {
    openCorpus(f);
  }
}

}  // namespace qkui
