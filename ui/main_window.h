// QKLab ui — the main window: a composition root. It owns the training worker's thread and wires
// the run controls, the loss view and the status bar; the widgets do the work.
#pragma once
#include <QMainWindow>
#include <QThread>

#include "snapshot.h"

class QAction;
class QComboBox;
class QLabel;
class QProgressBar;
class QPlainTextEdit;

namespace qkui {

class LossPlot;
class TrainingWorker;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;
  LossPlot* lossPlot() const { return loss_; }
  qint64 stepsDone() const { return steps_done_; }
  // Loads an experiment (JSON text in the CLI's format); returns false and shows why on error.
  void loadExperiment(const QString& config_json);
  QString lastError() const { return last_error_; }

 public slots:
  void start();
  void pause();
  void stepOnce();
  void reset();
  void openConfig();
  void openCorpus(const QString& path);
  void exportLoss();

 signals:
  void trainingFinished();

 protected:
  void closeEvent(QCloseEvent* e) override;
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private slots:
  void onConfigured(const qkui::ExperimentInfo& info);
  void onSnapshot(const qkui::TrainingSnapshot& s);
  void onFailed(const QString& message);

 private:
  void buildActions();
  void setRunning(bool running);
  QThread thread_;
  TrainingWorker* worker_;
  LossPlot* loss_;
  QPlainTextEdit* log_;
  QComboBox* preset_;
  QAction *start_, *pause_, *step_, *reset_;
  QLabel *step_label_, *rate_label_, *info_label_;
  QProgressBar* progress_;
  qint64 steps_done_ = 0;
  QString config_json_, last_error_;
};

}  // namespace qkui
