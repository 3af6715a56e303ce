// QKLab ui — the main window's toolbar, menus and recent files (see main_window.h).
#include "main_window.h"
#include "experiment_panel.h"

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QToolBar>

#include "version_info.h"

namespace qkui {

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
  seed_box_ = new QComboBox(this);
  seed_box_->setObjectName("seed");
  seed_box_->setToolTip(tr("The seed whose checkpoints the analyses look at (a run folder with several seeds)"));
  seed_action_ = tb->addWidget(seed_box_);
  seed_action_->setVisible(false);
  connect(seed_box_, qOverload<int>(&QComboBox::activated), this, [this](int i) {
    if (!info_.run_dir.isEmpty()) openRunFolder(info_.run_dir, seed_box_->itemData(i).toInt());
  });
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
  file->addAction(tr("Open model checkpoint…"), this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Open a model checkpoint (a run's, a conversion's or an import's)"),
                                                   QString(), tr("QKLab checkpoints (*.safetensors)"));
    if (!f.isEmpty()) openRunFolder(f);
  });
  resume_ = file->addAction(tr("Resume training"), this, &MainWindow::resumeRun);
  resume_->setEnabled(false);
  resume_->setToolTip(tr("Continue the opened run folder exactly where it stopped (its saved training state)"));
  file->addAction(tr("Open text corpus…"), this, [this] {
    QString f = QFileDialog::getOpenFileName(this, tr("Open a UTF-8 text file"));
    if (!f.isEmpty()) openCorpus(f);
  });
  file->addAction(tr("Open prepared tokens folder…"), this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, tr("A folder with train.bin and val.bin (qklab-cli prepare, or nanoGPT's)"));
    if (d.isEmpty()) return;
    if (ExperimentPanel::tokensFolderOf(d).isEmpty())
      return onFailed(tr("%1: not a tokens folder (expected train.bin and val.bin; qklab-cli prepare writes them)").arg(d));
    openCorpus(d);
  });
  recent_ = file->addMenu(tr("Recent"));
  rebuildRecent();
  file->addSeparator();
  file->addAction(tr("Export current view…"), QKeySequence(Qt::CTRL | Qt::Key_E), this, &MainWindow::exportCurrentView);
  file->addAction(tr("Figure size for exports…"), this, [this] {
    const ExportOptions o = exportOptions();
    bool ok = false;
    const QString text = QInputDialog::getText(
        this, tr("Figure size"), tr("PNG size in pixels and pixels per point, e.g. 1600x1000@2"), QLineEdit::Normal,
        QString("%1x%2@%3").arg(o.size.width()).arg(o.size.height()).arg(o.png_scale), &ok);
    if (ok && !setExportSize(text)) onFailed(tr("Figure size: expected WIDTHxHEIGHT@SCALE, e.g. 1600x1000@2, got '%1'").arg(text));
  });
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
                                QString::fromStdString(qk::libtorch_version())));
  });
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
      if (!ExperimentPanel::tokensFolderOf(p).isEmpty()) openCorpus(p);
      else if (fi.isDir()) openRunFolder(p);
      else if (p.endsWith(".json", Qt::CaseInsensitive)) openExperimentFile(p);
      else openCorpus(p);
    });
}

}  // namespace qkui
