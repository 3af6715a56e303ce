// QKLab ui — the main window: a composition root. It owns the training worker's thread, the
// experiment panel, the list of views (LabView, views/), menus (main_menus.cpp), status bar and
// settings, and wires them together; the widgets and the worker
// do the work. Commands reach the worker as queued functor calls; results come back as values.
#pragma once
#include <QElapsedTimer>
#include <QMainWindow>
#include <QThread>

#include "config.h"
#include "lab_view.h"
#include "report.h"
#include "snapshot.h"

class QAction;
class QComboBox;
class QLabel;
class QMenu;
class QProgressBar;
class QToolButton;
class QPlainTextEdit;
class QTabWidget;

namespace qkui {

class AblationView;
class AttentionView;
class AttributionView;
class CircuitsView;
class DetectorsView;
class LensView;
class ModelView;
class ExperimentPanel;
class GeometryView;
class LabView;
class LossPlot;
class RankView;
class SamplesView;
class SweepView;
class SpectraView;
class TrainingWorker;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;
  LossPlot* lossPlot() const { return loss_; }
  AttentionView* attentionView() const { return attention_; }
  SweepView* sweepView() const { return sweep_; }
  SpectraView* spectraView() const { return spectra_; }
  RankView* rankView() const { return rank_; }
  GeometryView* geometryView() const { return geometry_; }
  CircuitsView* circuitsView() const { return circuits_; }
  AblationView* ablationView() const { return ablation_; }
  LensView* lensView() const { return lens_; }
  AttributionView* attributionView() const { return attribution_; }
  DetectorsView* detectorsView() const { return detectors_; }
  ModelView* modelView() const { return model_; }
  SamplesView* samplesView() const { return samples_; }
  ExperimentPanel* experimentPanel() const { return panel_; }
  QTabWidget* tabs() const { return tabs_; }
  const QList<LabView*>& views() const { return views_; }
  QStringList viewNames() const;
  LabView* currentView() const;  // the view of the tab shown
  bool showView(const QString& name);  // false: no view of that name
  qint64 stepsDone() const { return steps_done_; }
  bool isFinished() const { return finished_; }  // all steps done, or every variant halted
  bool sweepOpen() const;  // a sweep folder is shown in the Sweep view
  bool isRunning() const { return running_; }
  // What the worker last said: false once it has stopped stepping (its snapshot after a pause).
  bool workerRunning() const { return worker_running_; }
  // An on-request analysis (geometry, circuits, ablation) is being computed.
  bool analysisBusy() const { return analysis_busy_; }
  TrainingWorker* worker() const { return worker_; }  // tests: its signals (never its tensors)
  QString lastError() const { return last_error_; }
  const ExperimentInfo& info() const { return info_; }
  bool reportBusy() const { return !report_dir_.isEmpty(); }
  const ReportResult& lastReport() const { return last_report_; }
  ExportOptions exportOptions() const;     // the figure size for exports (QSettings; default 1600×1000 px at 2×)
  bool setExportSize(const QString& spec);  // "WIDTHxHEIGHT[@SCALE]"; false for a bad spec

 public Q_SLOTS:
  void loadExperiment(const qk::ExperimentConfig& config);
  // Opens an experiment JSON file (validated); a bad file gets a message naming it.
  bool openExperimentFile(const QString& path);
  void start();
  void pause();
  void stepOnce();
  void reset();
  void stop();
  void openConfig();
  void saveConfig();
  void openRunFolder(const QString& dir, int seed = -1);
  void resumeRun();  // File → Resume training: the opened run folder continues from its training state
  void openCorpus(const QString& path);
  void exportCurrentView();
  // Writes the current view's figures: the first to `path`, the others beside it.
  QString exportViewTo(const QString& path);
  // Computes the report's analyses on the worker (progress in the status bar), then writes it.
  void exportReport(const QString& dir);

 Q_SIGNALS:
  void trainingFinished();
  void experimentReady();
  void reportWritten(const QString& dir, const QString& error);

 protected:
  void closeEvent(QCloseEvent* e) override;
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private Q_SLOTS:
  void onConfigured(const qkui::ExperimentInfo& info);
  void onSnapshot(const qkui::TrainingSnapshot& s);
  void onAnalysis(const qkui::AnalysisResult& r);
  void onFailed(const QString& message);
  void onReportReady(const qk::ReportData& data);

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
  GeometryView* geometry_;
  CircuitsView* circuits_;
  AblationView* ablation_;
  LensView* lens_;
  AttributionView* attribution_;
  DetectorsView* detectors_;
  ModelView* model_;
  SamplesView* samples_;
  SweepView* sweep_;
  QPlainTextEdit* log_;
  QMenu* recent_;
  QComboBox* seed_box_ = nullptr;
  QAction* seed_action_ = nullptr;
  QAction *start_, *pause_, *step_, *reset_, *stop_;
  QAction* resume_ = nullptr;
  QLabel *step_label_, *rate_label_, *eta_label_, *mem_label_, *info_label_;
  QProgressBar *progress_, *report_progress_;
  QToolButton* cancel_analysis_ = nullptr;
  QList<LabView*> views_;
  QString report_dir_;  // the report being computed
  ReportResult last_report_;
  qint64 steps_done_ = 0;
  bool worker_running_ = false, analysis_busy_ = false;
  bool running_ = false, finished_ = false;
  QString last_error_;
  ExperimentInfo info_;
  QElapsedTimer last_views_;
};

}  // namespace qkui
