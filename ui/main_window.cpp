// QKLab ui — main window (see main_window.h).
#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFile>
#include <QFileDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QStatusBar>
#include <QToolBar>
#include <cmath>
#include <nlohmann/json.hpp>

#include "config.h"
#include "loss_plot.h"
#include "plot_export.h"
#include "presets.h"
#include "training_worker.h"

namespace qkui {

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent), worker_(new TrainingWorker), loss_(new LossPlot(this)),
      log_(new QPlainTextEdit(this)), preset_(new QComboBox(this)) {
  setWindowTitle(tr("QKLab — separate query and key, or merged?"));
  setObjectName("MainWindow");
  setAcceptDrops(true);
  resize(1100, 700);
  setCentralWidget(loss_);

  log_->setReadOnly(true);
  log_->setMaximumBlockCount(2000);
  auto* dock = new QDockWidget(tr("Evaluations and samples"), this);
  dock->setObjectName("logDock");
  dock->setWidget(log_);
  addDockWidget(Qt::BottomDockWidgetArea, dock);

  step_label_ = new QLabel(tr("step 0/0"), this);
  rate_label_ = new QLabel(this);
  info_label_ = new QLabel(this);
  progress_ = new QProgressBar(this);
  progress_->setMaximumWidth(220);
  statusBar()->addWidget(info_label_, 1);
  statusBar()->addPermanentWidget(rate_label_);
  statusBar()->addPermanentWidget(step_label_);
  statusBar()->addPermanentWidget(progress_);

  worker_->moveToThread(&thread_);
  connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
  connect(worker_, &TrainingWorker::configured, this, &MainWindow::onConfigured);
  connect(worker_, &TrainingWorker::snapshot, this, &MainWindow::onSnapshot);
  connect(worker_, &TrainingWorker::failed, this, &MainWindow::onFailed);
  thread_.setObjectName("qklab-training");
  thread_.start();

  buildActions();
  loadExperiment(QString::fromStdString(qk::config_to_json(qk::preset_config("default")).dump()));
}

MainWindow::~MainWindow() {
  worker_->stop_flag() = true;
  QMetaObject::invokeMethod(worker_, "shutdown", Qt::BlockingQueuedConnection);
  thread_.quit();
  thread_.wait();
}

void MainWindow::buildActions() {
  auto* tb = addToolBar(tr("Run"));
  tb->setObjectName("runToolbar");
  for (const auto& p : qk::presets()) preset_->addItem(QString::fromStdString(p.name));
  preset_->setToolTip(tr("Built-in experiment presets"));
  tb->addWidget(new QLabel(tr(" Preset "), this));
  tb->addWidget(preset_);
  connect(preset_, &QComboBox::textActivated, this, [this](const QString& name) {
    auto cfg = qk::preset_config(name.toStdString());
    if (cfg.data.kind == "text" && cfg.data.path.empty()) {
      QString f = QFileDialog::getOpenFileName(this, tr("Corpus for %1 (e.g. the-verdict.txt)").arg(name));
      if (f.isEmpty()) return;
      cfg.data.path = f.toStdString();
    }
    loadExperiment(QString::fromStdString(qk::config_to_json(cfg).dump()));
  });
  start_ = tb->addAction(tr("Start"), this, &MainWindow::start);
  start_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
  pause_ = tb->addAction(tr("Pause"), this, &MainWindow::pause);
  pause_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_P));
  step_ = tb->addAction(tr("Step"), this, &MainWindow::stepOnce);
  step_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_T));
  reset_ = tb->addAction(tr("Reset"), this, &MainWindow::reset);
  reset_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_R));
  for (auto* a : {start_, pause_, step_, reset_}) a->setObjectName(a->text().toLower());

  auto* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("Open experiment…"), QKeySequence::Open, this, &MainWindow::openConfig);
  file->addAction(tr("Open text corpus…"), this, [this] {
    QString f = QFileDialog::getOpenFileName(this, tr("Open a UTF-8 text file"));
    if (!f.isEmpty()) openCorpus(f);
  });
  file->addAction(tr("Export loss plot…"), QKeySequence(Qt::CTRL | Qt::Key_E), this, &MainWindow::exportLoss);
  file->addSeparator();
  file->addAction(tr("Quit"), QKeySequence::Quit, this, &QWidget::close);
  auto* run = menuBar()->addMenu(tr("&Run"));
  for (auto* a : {start_, pause_, step_, reset_}) run->addAction(a);
  auto* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("About QKLab"), this, [this] {
    QMessageBox::about(this, tr("About QKLab"),
                       tr("<b>QKLab %1</b><p>Does a transformer need separate query and key matrices? "
                          "Trains standard (W<sub>Q</sub>·W<sub>K</sub><sup>T</sup>) and merged (S) "
                          "attention side by side.</p><p>Qt %2</p>")
                           .arg(QApplication::applicationVersion(), qVersion()));
  });
}

void MainWindow::loadExperiment(const QString& config_json) {
  config_json_ = config_json;
  loss_->clear();
  steps_done_ = 0;
  last_error_.clear();
  setRunning(false);
  QMetaObject::invokeMethod(worker_, "configure", Qt::QueuedConnection, Q_ARG(QString, config_json));
}

void MainWindow::openConfig() {
  QString f = QFileDialog::getOpenFileName(this, tr("Open experiment"), QString(), tr("Experiment (*.json)"));
  if (f.isEmpty()) return;
  try {
    auto cfg = qk::load_config_file(f.toStdString());
    qk::validate_config(cfg, f.toStdString());
    loadExperiment(QString::fromStdString(qk::config_to_json(cfg).dump()));
  } catch (const std::exception& e) {
    onFailed(QString::fromStdString(e.what()));
  }
}

void MainWindow::openCorpus(const QString& path) {
  auto cfg = qk::preset_config("default");
  cfg.name = QFileInfo(path).fileName().toStdString();
  cfg.data.kind = "text";
  cfg.data.path = path.toStdString();
  cfg.data.tokenizer = "char";
  cfg.model.context_length = 64;
  cfg.model.drop_rate = 0.1;
  cfg.train.batch_size = 16;
  cfg.train.steps = 1000;
  loadExperiment(QString::fromStdString(qk::config_to_json(cfg).dump()));
}

void MainWindow::exportLoss() {
  QString f = QFileDialog::getSaveFileName(this, tr("Export loss plot"), "loss.png",
                                           tr("PNG (*.png);;SVG (*.svg);;PDF (*.pdf);;CSV data (*.csv)"));
  if (f.isEmpty()) return;
  QString err = f.endsWith(".csv", Qt::CaseInsensitive) ? export_loss_csv(*loss_, f)
                                                        : export_plot(loss_->plot(), f, tr("Loss"));
  if (!err.isEmpty()) onFailed(err);
}

void MainWindow::start() {
  setRunning(true);
  QMetaObject::invokeMethod(worker_, "start", Qt::QueuedConnection);
}
void MainWindow::pause() {
  setRunning(false);
  QMetaObject::invokeMethod(worker_, "pause", Qt::QueuedConnection);
}
void MainWindow::stepOnce() { QMetaObject::invokeMethod(worker_, "stepOnce", Qt::QueuedConnection); }
void MainWindow::reset() { loadExperiment(config_json_); }

void MainWindow::setRunning(bool running) {
  start_->setEnabled(!running);
  pause_->setEnabled(running);
  step_->setEnabled(!running);
  preset_->setEnabled(!running);  // settings that cannot change mid-run are locked
}

void MainWindow::onConfigured(const ExperimentInfo& info) {
  QStringList parts;
  for (int i = 0; i < info.variants.size(); ++i)
    parts << QString("%1: %2 params").arg(info.variants[i]).arg(info.parameters[i]);
  info_label_->setText(info.name + " — " + parts.join(", "));
  progress_->setRange(0, int(info.total_steps));
  progress_->setValue(0);
  step_label_->setText(tr("step 0/%1").arg(info.total_steps));
  log_->appendPlainText(tr("Experiment '%1' ready: %2").arg(info.name, parts.join(", ")));
}

void MainWindow::onSnapshot(const TrainingSnapshot& s) {
  loss_->addEvals(s.evals);
  for (const auto& r : s.evals) {
    QString line = QString("step %1  %2  train %3  val %4")
                       .arg(r.step).arg(QString::fromStdString(r.variant), -9)
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
    rate_label_->setText(tr("%1 tok/s, %2 ms/step").arg(s.tokens_per_s, 0, 'f', 0).arg(s.seconds_per_step * 1000, 0, 'f', 1));
  if (s.finished) {
    setRunning(false);
    start_->setEnabled(false);
    step_->setEnabled(false);
    emit trainingFinished();
  } else if (!s.running) {
    setRunning(false);
  }
}

void MainWindow::onFailed(const QString& message) {
  last_error_ = message;
  setRunning(false);
  log_->appendPlainText(tr("Error: %1").arg(message));
  if (!QApplication::platformName().contains("offscreen"))
    QMessageBox::warning(this, tr("QKLab"), message);
}

void MainWindow::closeEvent(QCloseEvent* e) {
  worker_->stop_flag() = true;  // the worker stops within one training step
  e->accept();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
  const auto urls = e->mimeData()->urls();
  if (urls.isEmpty()) return;
  const QString f = urls.first().toLocalFile();
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
