// QKLab ui — the main window: a composition root. It owns the training worker's thread, the
// experiment panel, the views (loss, attention, spectra, rank analysis, samples), menus, status
// bar and settings, and wires them together; the widgets and the worker do the work.
#pragma once
#include <QElapsedTimer>
#include <QMainWindow>
#include <QThread>

#include "snapshot.h"

class QAction;
class QLabel;
class QMenu;
class QProgressBar;
class QPlainTextEdit;
class QTabWidget;

namespace qkui {

class AttentionView;
class ExperimentPanel;
class LossPlot;
class RankView;
class SamplesView;
class SpectraView;
class TrainingWorker;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;
  LossPlot* lossPlot() const { return loss_; }
  AttentionView* attentionView() const { return attention_; }
  SpectraView* spectraView() const { return spectra_; }
  RankView* rankView() const { return rank_; }
  SamplesView* samplesView() const { return samples_; }
  ExperimentPanel* experimentPanel() const { return panel_; }
  QTabWidget* tabs() const { return tabs_; }
  qint64 stepsDone() const { return steps_done_; }
  bool isRunning() const { return running_; }
  QString lastError() const { return last_error_; }
  const ExperimentInfo& info() const { return info_; }

 public Q_SLOTS:
  void loadExperiment(const QString& config_json);
  void start();
  void pause();
  void stepOnce();
  void reset();
  void stop();
  void openConfig();
  void saveConfig();
  void openRunFolder(const QString& dir);
  void openCorpus(const QString& path);
  void exportCurrentView();
  void exportReport(const QString& dir);

 Q_SIGNALS:
  void trainingFinished();
  void experimentReady();

 protected:
  void closeEvent(QCloseEvent* e) override;
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private Q_SLOTS:
  void onConfigured(const qkui::ExperimentInfo& info);
  void onSnapshot(const qkui::TrainingSnapshot& s);
  void onAnalysis(const qkui::AnalysisResult& r);
  void onFailed(const QString& message);

 private:
  void buildMenus();
  void setRunning(bool running);
  void requestViews(bool force);
  void addRecent(const QString& path);
  void rebuildRecent();
  QThread thread_;
  TrainingWorker* worker_;
  ExperimentPanel* panel_;
  QTabWidget* tabs_;
  LossPlot* loss_;
  AttentionView* attention_;
  SpectraView* spectra_;
  RankView* rank_;
  SamplesView* samples_;
  QPlainTextEdit* log_;
  QMenu* recent_;
  QAction *start_, *pause_, *step_, *reset_, *stop_;
  QLabel *step_label_, *rate_label_, *eta_label_, *mem_label_, *info_label_;
  QProgressBar* progress_;
  qint64 steps_done_ = 0;
  bool running_ = false, finished_ = false;
  QString last_error_;
  ExperimentInfo info_;
  QElapsedTimer last_views_;
};

}  // namespace qkui
