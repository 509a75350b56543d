/*
 *  eprop_nestml_wrappers.h -- per-step e-prop bookkeeping around NESTML-generated neurons (eprop-plugins)
 *
 *  NESTML limitations worked around:
 *  - the generated update() has no per-step hook, so a wrapper derived from the generated class
 *    advances it one step at a time (the project header template makes update() and the state,
 *    parameter and internal structs protected instead of private);
 *  - NESTML cannot write to NEST's e-prop history, send learning-signal/rate events or implement
 *    Node::compute_gradient, so the wrapper does that from the NESTML state after each step;
 *  - NESTML has no string parameters: the wrapper maps NEST's `surrogate_gradient_function` and
 *    `loss` strings to the models' integer selectors.
 *  The neuron dynamics and the surrogate gradient stay in the .nestml sources; the gradient formulas
 *  follow docs/model.rst §2.  The module template registers these wrappers under the model
 *  names.  Written for nest-simulator 3.10.  GPL-2.0-or-later.
 */

#ifndef EPROP_NESTML_WRAPPERS_H
#define EPROP_NESTML_WRAPPERS_H

#include <algorithm>
#include <array>
#include <utility>
#include <string>
#include <vector>

#include "eprop_nestml_nodes.h"
#include "eprop_synapse.h"
#include "kernel_manager.h"
#include "weight_optimizer.h"

namespace nest
{

namespace eprop_nestml
{
//! Names of the surrogate gradients, in the order of the NESTML `surrogate_gradient_index`.
inline const std::array< std::string, 4 > SURROGATE_NAMES = { "piecewise_linear",
  "exponential",
  "fast_sigmoid_derivative",
  "arctan_derivative" };
//! Names of the losses, in the order of the NESTML `loss_index`.
inline const std::array< std::string, 2 > LOSS_NAMES = { "mean_squared_error", "cross_entropy" };

template < size_t N >
long
index_of( const std::array< std::string, N >& names, const std::string& value, const std::string& key )
{
  for ( size_t i = 0; i < N; ++i )
  {
    if ( names[ i ] == value )
    {
      return static_cast< long >( i );
    }
  }
  std::string allowed;
  for ( const auto& n : names )
  {
    allowed += ( allowed.empty() ? "" : ", " ) + n;
  }
  throw BadProperty( key + " = '" + value + "': allowed values are " + allowed );
}

/**
 * NEST's models take and report the absolute potential V_m; the NESTML models integrate v = V_m - E_L.
 * Translate a V_m entry of a status dictionary into v (E_L from the same dictionary if given).
 */
template < class P >
void
absolute_to_relative_potential( const Dictionary& d, const P& params )
{
  double V_m = 0.0;
  if ( d.update_value( "V_m", V_m ) )
  {
    double E_L = params.E_L;
    d.update_value( "E_L", E_L );
    Dictionary shared( d );  // a Dictionary is a shared handle: this adds the entry to d
    shared[ "v" ] = V_m - E_L;
  }
}

/**
 * Spike input summed in ascending sender order, whatever the number of threads.
 *
 * NEST adds arriving spike weights to a ring buffer in delivery order, which depends on how the
 * senders are distributed over threads, so the floating-point sum (and, through threshold
 * crossings, the whole run) would depend on `local_num_threads`.  This buffer keeps the
 * (sender, weight) pairs of each delivery step and sums them sorted by sender node id: the order
 * of a single-threaded run (and of the NumPy reference), for any thread count.
 */
class SenderOrderedSpikeInput
{
public:
  void
  init()
  {
    buckets_.assign(
      kernel().connection_manager.get_min_delay() + kernel().connection_manager.get_max_delay(), {} );
  }

  void
  add( SpikeEvent& e )
  {
    const long steps = e.get_rel_delivery_steps( kernel().simulation_manager.get_slice_origin() );
    buckets_[ kernel().event_delivery_manager.get_modulo( steps ) ].emplace_back(
      e.retrieve_sender_node_id_from_source_table(), e.get_weight() * e.get_multiplicity() );
  }

  //! Sum of the weights arriving at `lag`, in ascending sender order; false if nothing arrives.
  bool
  take( const long lag, double& sum )
  {
    auto& bucket = buckets_[ kernel().event_delivery_manager.get_modulo( lag ) ];
    if ( bucket.empty() )
    {
      return false;
    }
    std::stable_sort(
      bucket.begin(), bucket.end(), []( const auto& a, const auto& b ) { return a.first < b.first; } );
    sum = 0.0;
    for ( const auto& arrival : bucket )
    {
      sum += arrival.second;
    }
    bucket.clear();
    return true;
  }

private:
  std::vector< std::vector< std::pair< size_t, double > > > buckets_;
};

//! Send a flush spike (NEST 3.10's FlushEventMechanism), as the built-in e-prop neurons do.
template < class NodeT >
void
send_flush_event( NodeT& node, const long lag )
{
  SpikeEvent se;
  se.set_flush_event_flag( true );
  kernel().event_delivery_manager.send( node, se, lag );
}
}  // namespace eprop_nestml

/**
 * What every wrapper shares, around a generated NESTML class G with state v (relative to E_L),
 * parameter E_L and one spike input port:
 * - spike input summed in sender order (identical results for any number of threads);
 * - NEST's absolute V_m in get_status/set_status;
 * - the flush-event mechanism's pre-run calibration;
 * - parent-class settings (flush interval, ISI cutoff, ...) survive model copies: NESTML's generated
 *   copy constructor default-constructs the parent class, losing what SetDefaults put there.
 */
template < class G >
class EpropNestmlCommon : public G
{
public:
  EpropNestmlCommon() = default;

  EpropNestmlCommon( const EpropNestmlCommon& other )
    : G( other )
  {
    static_cast< FlushEventMechanism& >( *this ) = other;
    static_cast< IgnoreAndSpikeMechanism& >( *this ) = other;
    this->eprop_isi_trace_cutoff_ = other.eprop_isi_trace_cutoff_;
  }

  void
  get_status( Dictionary& d ) const override
  {
    G::get_status( d );
    d[ "V_m" ] = this->S_.v + this->P_.E_L;
  }

  void
  set_status( const Dictionary& d ) override
  {
    eprop_nestml::absolute_to_relative_potential( d, this->P_ );
    G::set_status( d );
  }

  using G::handle;

  /**
   * With several threads, keep spike arrivals with their senders (summed in sender order in
   * update()).  A single thread delivers in ascending sender order already: the generated ring
   * buffer gives the same sum without the bookkeeping (tested: 1 and 2 threads agree bit for bit).
   * The models have one spike port (index 0) and do not use onReceive.
   */
  void
  handle( SpikeEvent& e ) override
  {
    if ( order_by_sender_ )
    {
      ordered_input_.add( e );
    }
    else
    {
      // what the generated handle() does for the single spike port, minus its receipt counter,
      // which the models do not use
      this->B_.spike_inputs_[ 0 ].add_value(
        e.get_rel_delivery_steps( kernel().simulation_manager.get_slice_origin() ),
        e.get_weight() * e.get_multiplicity() );
    }
  }

protected:
  void
  init_buffers_() override
  {
    G::init_buffers_();
    order_by_sender_ = kernel().vp_manager.get_num_threads() > 1;
    ordered_input_.init();
  }

  void
  pre_run_hook() override
  {
    G::pre_run_hook();
    FlushEventMechanism::pre_run_hook();
  }

  /**
   * One time step of the NESTML dynamics at NEST step t = origin + lag, then its recording.  The
   * class template declares the generated update() inline (so this step is inlined) and moves its
   * `record_data` call here, where t is at hand (one Time-to-steps conversion less per step).
   */
  void
  step_dynamics( Time const& origin, const long lag, const long t )
  {
    feed_ordered_input( lag );
    G::update( origin, lag, lag + 1 );  // may emit a spike
    this->B_.logger_.record_data( t );
  }

  //! Put the sender-ordered sum of this step's spikes into the generated model's (empty) spike buffer.
  void
  feed_ordered_input( const long lag )
  {
    double sum = 0.0;
    if ( order_by_sender_ and ordered_input_.take( lag, sum ) )
    {
      this->B_.spike_inputs_[ 0 ].add_value( lag, sum );
    }
  }

  //! Spike or flush event bookkeeping after a step, as NEST's e-prop neurons do.
  void
  after_step_events( const long t, const long lag )
  {
    if ( this->S_.z > 0.0 )
    {
      this->set_last_event_time( t );
    }
    else if ( this->flush_event_is_due( t ) )
    {
      eprop_nestml::send_flush_event( *this, lag );
      this->set_last_event_time( t );
    }
  }

  eprop_nestml::SenderOrderedSpikeInput ordered_input_;
  bool order_by_sender_ = false;
};

/**
 * Recurrent neurons of both families: NEST's string `surrogate_gradient_function` is mapped to the
 * NESTML integer `surrogate_gradient_index`.
 */
template < class G >
class EpropNestmlRecurrentCommon : public EpropNestmlCommon< G >
{
public:
  void
  get_status( Dictionary& d ) const override
  {
    EpropNestmlCommon< G >::get_status( d );
    d[ "surrogate_gradient_function" ] = eprop_nestml::SURROGATE_NAMES.at( this->P_.surrogate_gradient_index );
  }

  void
  set_status( const Dictionary& d ) override
  {
    std::string name;
    if ( d.update_value( "surrogate_gradient_function", name ) )
    {
      Dictionary shared( d );  // a shared handle: adds the integer selector to d for the generated code
      shared[ "surrogate_gradient_index" ] =
        eprop_nestml::index_of( eprop_nestml::SURROGATE_NAMES, name, "surrogate_gradient_function" );
    }
    EpropNestmlCommon< G >::set_status( d );
  }

protected:
  /**
   * The surrogate gradient into the history entry of the step, appended just before.  NEST's
   * write_surrogate_gradient_to_history( t, ... ) finds that entry by binary search over the whole
   * history; it is the last one (NEST keeps no history without incoming e-prop synapses).
   */
  void
  write_surrogate_gradient_to_new_entry( const double surrogate_gradient )
  {
    if ( this->eprop_indegree_ > 0 )
    {
      this->eprop_history_.back().surrogate_gradient_ = surrogate_gradient;
    }
  }
};

/**
 * Original-family recurrent neuron (eprop_iaf(_adapt)_bsshslm_2020 semantics) around a generated
 * NESTML class G with state v, r, z, surrogate_gradient, interval_start, learning_signal, parameters
 * c_reg, f_target (Hz), surrogate_gradient_index (adaptive: adapt_beta) and internals P_v_m, P_z_in
 * (adaptive: P_adapt).
 */
template < class G, bool adaptive >
class EpropOriginalRecurrent : public EpropNestmlRecurrentCommon< G >
{
protected:
  void
  update( Time const& origin, const long from, const long to ) override
  {
    const long update_interval = kernel().simulation_manager.get_eprop_update_interval().get_steps();
    const bool with_reset = kernel().simulation_manager.get_eprop_reset_neurons_on_update();
    const long shift = this->get_shift();

    for ( long lag = from; lag < to; ++lag )
    {
      const long t = origin.get_steps() + lag;
      const long interval_step = ( t - shift ) % update_interval;

      if ( interval_step == 0 )
      {
        this->erase_used_firing_rate_reg_history();
        this->erase_used_eprop_history();
      }
      this->S_.interval_start = interval_step == 0 and with_reset;
      // read before the step so that the recorded value carries NEST's time stamp (the history entry
      // read lies three steps back and exists already)
      this->S_.learning_signal = this->get_learning_signal_from_history( t );

      this->step_dynamics( origin, lag, t );  // the NESTML dynamics of one step

      if ( this->S_.z > 0.0 )
      {
        this->count_spike();
      }
      this->after_step_events( t, lag );
      this->append_new_eprop_history_entry( t );
      this->write_surrogate_gradient_to_new_entry( this->S_.surrogate_gradient );

      if ( interval_step == update_interval - 1 )
      {
        // f_target is given in Hz; the history function takes spikes per ms
        this->write_firing_rate_reg_to_history( t, this->P_.f_target / 1000.0, this->P_.c_reg );
        this->reset_spike_count();
      }
    }
  }

  //! Gradient of one incoming e-prop synapse over the last update interval (docs/model.rst §2).
  double
  compute_gradient( std::vector< long >& presyn_isis,
    const long t_previous_update,
    const long t_previous_trigger_spike,
    const double kappa,
    const bool average_gradient ) override
  {
    auto hist = this->get_eprop_history( t_previous_trigger_spike );

    const double alpha = this->V_.P_v_m;
    const double zeta = this->V_.P_z_in;
    double z_bar = 0.0;    // filtered presynaptic spikes
    double epsilon = 0.0;  // adaptation component of the eligibility vector
    double e_bar = 0.0;    // low-pass filtered eligibility trace
    double sum_e = 0.0;    // sum of eligibility traces (for the rate regulariser)
    double gradient = 0.0;
    long t = t_previous_trigger_spike;

    for ( const long isi : presyn_isis )
    {
      double z = 1.0;  // a presynaptic spike starts each inter-spike interval
      const long t_end = t + isi;
      for ( ; t < t_end; ++t, ++hist )
      {
        this->require_eprop_history_entry( hist, t );
        const double psi = hist->surrogate_gradient_;
        const double L = hist->learning_signal_;
        z_bar = alpha * z_bar + zeta * z;
        double e;
        if constexpr ( adaptive )
        {
          e = psi * ( z_bar - this->P_.adapt_beta * epsilon );
          epsilon = this->V_.P_adapt * epsilon + e;
        }
        else
        {
          e = psi * z_bar;
        }
        e_bar = kappa * e_bar + ( 1.0 - kappa ) * e;
        gradient += L * e_bar;
        sum_e += e;
        z = 0.0;
      }
    }
    presyn_isis.clear();

    const long update_interval = kernel().simulation_manager.get_eprop_update_interval().get_steps();
    const long learning_window = kernel().simulation_manager.get_eprop_learning_window().get_steps();
    gradient += this->get_firing_rate_reg_history( t_previous_update + this->get_shift() + update_interval ) * sum_e;
    if ( average_gradient )
    {
      gradient /= learning_window;
    }
    return gradient;
  }
};

/**
 * Event-family recurrent neuron (eprop_iaf, eprop_iaf_adapt, eprop_iaf_psc_delta(_adapt) semantics)
 * around a generated NESTML class G with state v, z, surrogate_gradient, learning_signal, parameters
 * c_reg, f_target (Hz), kappa, kappa_reg (adaptive: adapt_beta) and internals P_v_m (adaptive: P_adapt).
 */
template < class G, bool adaptive >
class EpropEventRecurrent : public EpropNestmlRecurrentCommon< G >
{
protected:
  void
  update( Time const& origin, const long from, const long to ) override
  {
    for ( long lag = from; lag < to; ++lag )
    {
      const long t = origin.get_steps() + lag;
      // read before the step so that the recorded value carries NEST's time stamp (two steps back)
      this->S_.learning_signal = this->get_learning_signal_from_history( t );

      this->step_dynamics( origin, lag, t );  // the NESTML dynamics of one step

      this->after_step_events( t, lag );
      this->append_new_eprop_history_entry( t );
      this->write_surrogate_gradient_to_new_entry( this->S_.surrogate_gradient );
      // f_target is given in Hz; the history function takes spikes per ms
      this->write_firing_rate_reg_to_history(
        t, this->S_.z, this->P_.f_target / 1000.0, this->P_.kappa_reg, this->P_.c_reg );
    }
  }

  /**
   * Gradient of one incoming e-prop synapse between two presynaptic spikes (docs/model.rst §3):
   * traces integrate from one step before the previous arrival for at most the ISI cutoff, then only
   * decay; the optimizer runs every step or once per spike.
   */
  void
  compute_gradient( const long t_spike,
    const long t_spike_previous,
    double& z_previous_buffer,
    double& z_bar,
    double& e_bar,
    double& e_bar_reg,
    double& epsilon,
    double& weight,
    const CommonSynapseProperties& cp,
    WeightOptimizer* optimizer,
    const bool is_flush_event,
    const bool previous_was_flush_event,
    double& gradient,
    long& remaining_steps_until_cutoff,
    long& decay_steps ) override
  {
    const auto& opt_cp = *static_cast< const EpropSynapseCommonProperties& >( cp ).optimizer_cp_;
    const bool optimize_each_step = opt_cp.optimize_each_step_;
    const double alpha = this->V_.P_v_m;
    const double kappa = this->P_.kappa;
    const double kappa_reg = this->P_.kappa_reg;
    const long isi_steps = t_spike - t_spike_previous;

    if ( not previous_was_flush_event )
    {
      remaining_steps_until_cutoff = this->get_eprop_isi_trace_cutoff();
      gradient = 0.0;
    }
    double z_current_buffer = previous_was_flush_event ? 0.0 : 1.0;  // the spike that opened this interval

    const long t_begin = t_spike_previous - 1;
    auto hist = this->get_eprop_history( t_begin );
    const long t_steps = std::min( remaining_steps_until_cutoff, isi_steps );
    const long t_end = t_begin + t_steps;

    for ( long t = t_begin; t < t_end; ++t, ++hist )
    {
      this->require_eprop_history_entry( hist, t );
      const double z = z_previous_buffer;  // presynaptic spikes reach the trace one step late
      z_previous_buffer = z_current_buffer;
      z_current_buffer = 0.0;
      const double psi = hist->surrogate_gradient_;
      z_bar = alpha * z_bar + z;
      double e;
      if constexpr ( adaptive )
      {
        e = psi * ( z_bar - this->P_.adapt_beta * epsilon );
        epsilon = this->V_.P_adapt * epsilon + e;
      }
      else
      {
        e = psi * z_bar;
      }
      e_bar = kappa * e_bar + e;
      e_bar_reg = kappa_reg * e_bar_reg + ( 1.0 - kappa_reg ) * e;
      const double increment = hist->learning_signal_ * e_bar + hist->firing_rate_reg_ * e_bar_reg;
      if ( optimize_each_step )
      {
        gradient = increment;
        weight = optimizer->optimized_weight( opt_cp, t + 1, gradient, weight );
      }
      else
      {
        gradient += increment;
      }
    }

    remaining_steps_until_cutoff -= t_steps;
    const long steps_after_cutoff = isi_steps - t_steps;
    decay_steps += steps_after_cutoff;
    if ( not is_flush_event and decay_steps > 0 )
    {
      z_bar *= std::pow( alpha, decay_steps );
      e_bar *= std::pow( kappa, decay_steps );
      e_bar_reg *= std::pow( kappa_reg, decay_steps );
      if constexpr ( adaptive )
      {
        epsilon *= std::pow( this->V_.P_adapt, decay_steps );
      }
      decay_steps = 0;
    }
    if ( not is_flush_event and not optimize_each_step )
    {
      weight = optimizer->optimized_weight( opt_cp, t_end + steps_after_cutoff, gradient, weight );
    }
  }
};

/**
 * Original-family readout (eprop_readout_bsshslm_2020 semantics) around a generated NESTML class G
 * with state interval_start, in_learning_window, target_signal, normalization_rate, error_signal,
 * readout_signal_unnorm, parameter loss_index and internals P_v_m, P_z_in.
 */
template < class G >
class EpropOriginalReadout : public EpropNestmlCommon< G >
{
public:
  void
  get_status( Dictionary& d ) const override
  {
    EpropNestmlCommon< G >::get_status( d );
    d[ "loss" ] = eprop_nestml::LOSS_NAMES.at( this->P_.loss_index );
  }

  void
  set_status( const Dictionary& d ) override
  {
    std::string name;
    if ( d.update_value( "loss", name ) )
    {
      Dictionary shared( d );  // shared handle: adds the integer selector to d
      shared[ "loss_index" ] = eprop_nestml::index_of( eprop_nestml::LOSS_NAMES, name, "loss" );
    }
    EpropNestmlCommon< G >::set_status( d );
  }

protected:
  void
  pre_run_hook() override
  {
    G::pre_run_hook();  // readouts send no spikes: no flush events
  }

  void
  update( Time const& origin, const long from, const long to ) override
  {
    const long update_interval = kernel().simulation_manager.get_eprop_update_interval().get_steps();
    const long learning_window = kernel().simulation_manager.get_eprop_learning_window().get_steps();
    const bool with_reset = kernel().simulation_manager.get_eprop_reset_neurons_on_update();
    const long shift = this->get_shift();
    const bool cross_entropy = this->P_.loss_index == 1;

    const size_t buffer_size = kernel().connection_manager.get_min_delay();
    std::vector< double > error_signal_buffer( buffer_size, 0.0 );
    std::vector< double > readout_signal_unnorm_buffer( buffer_size, 0.0 );

    for ( long lag = from; lag < to; ++lag )
    {
      const long t = origin.get_steps() + lag;
      const long interval_step = ( t - shift ) % update_interval;
      // the signals lag one more step behind (rate connection between readouts)
      const long interval_step_signals = ( t - shift - this->delay_out_norm_ ) % update_interval;

      if ( interval_step == 0 )
      {
        this->erase_used_eprop_history();
      }
      this->S_.interval_start = interval_step == 0 and with_reset;
      this->S_.in_learning_window = not( interval_step_signals < update_interval - learning_window );
      this->S_.target_signal = this->target_signal_in_;
      this->S_.normalization_rate = this->normalization_rate_in_;

      this->step_dynamics( origin, lag, t );  // the NESTML dynamics of one step

      this->target_signal_in_ = this->S_.target_signal;  // zeroed outside the learning window, as NEST
      this->normalization_rate_in_ = 0.0;
      if ( cross_entropy )
      {
        readout_signal_unnorm_buffer[ lag ] = this->S_.readout_signal_unnorm;
      }
      error_signal_buffer[ lag ] = this->S_.error_signal;
      this->append_new_eprop_history_entry( t );
      this->write_error_signal_to_history( t, this->S_.error_signal );
    }

    LearningSignalConnectionEvent error_signal_event;
    error_signal_event.set_coeffarray( error_signal_buffer );
    kernel().event_delivery_manager.send_secondary( *this, error_signal_event );

    if ( cross_entropy )
    {
      DelayedRateConnectionEvent readout_signal_unnorm_event;
      readout_signal_unnorm_event.set_coeffarray( readout_signal_unnorm_buffer );
      kernel().event_delivery_manager.send_secondary( *this, readout_signal_unnorm_event );
    }
  }

  //! Gradient of one incoming readout synapse over the last update interval (docs/model.rst §2).
  double
  compute_gradient( std::vector< long >& presyn_isis,
    const long,
    const long t_previous_trigger_spike,
    const double,
    const bool average_gradient ) override
  {
    auto hist = this->get_eprop_history( t_previous_trigger_spike );
    const double kappa_out = this->V_.P_v_m;
    const double zeta_out = this->V_.P_z_in;
    double z_bar = 0.0;
    double gradient = 0.0;
    long t = t_previous_trigger_spike;

    for ( const long isi : presyn_isis )
    {
      double z = 1.0;
      const long t_end = t + isi;
      for ( ; t < t_end; ++t, ++hist )
      {
        this->require_eprop_history_entry( hist, t );
        z_bar = kappa_out * z_bar + zeta_out * z;
        gradient += hist->error_signal_ * z_bar;
        z = 0.0;
      }
    }
    presyn_isis.clear();

    if ( average_gradient )
    {
      gradient /= kernel().simulation_manager.get_eprop_learning_window().get_steps();
    }
    return gradient;
  }
};

/**
 * Event-family readout (eprop_readout semantics) around a generated NESTML class G with state
 * target_signal, learning_window_signal, error_signal and internal P_v_m.
 */
template < class G >
class EpropEventReadout : public EpropNestmlCommon< G >
{
protected:
  void
  pre_run_hook() override
  {
    G::pre_run_hook();  // readouts send no spikes: no flush events
  }

  void
  update( Time const& origin, const long from, const long to ) override
  {
    std::vector< double > error_signal_buffer( kernel().connection_manager.get_min_delay(), 0.0 );

    for ( long lag = from; lag < to; ++lag )
    {
      const long t = origin.get_steps() + lag;
      this->S_.target_signal = this->target_signal_in_;
      this->S_.learning_window_signal = this->learning_window_signal_in_;

      this->step_dynamics( origin, lag, t );  // the NESTML dynamics of one step

      this->target_signal_in_ = this->S_.target_signal;  // multiplied by the window, as NEST's state
      error_signal_buffer[ lag ] = this->S_.error_signal;
      this->append_new_eprop_history_entry( t );
      this->write_error_signal_to_history( t, this->S_.error_signal );
    }

    LearningSignalConnectionEvent error_signal_event;
    error_signal_event.set_coeffarray( error_signal_buffer );
    kernel().event_delivery_manager.send_secondary( *this, error_signal_event );
  }

  //! Gradient of one incoming readout synapse between two presynaptic spikes (docs/model.rst §3).
  void
  compute_gradient( const long t_spike,
    const long t_spike_previous,
    double& z_previous_buffer,
    double& z_bar,
    double&,
    double&,
    double&,
    double& weight,
    const CommonSynapseProperties& cp,
    WeightOptimizer* optimizer,
    const bool is_flush_event,
    const bool previous_was_flush_event,
    double& gradient,
    long& remaining_steps_until_cutoff,
    long& decay_steps ) override
  {
    const auto& opt_cp = *static_cast< const EpropSynapseCommonProperties& >( cp ).optimizer_cp_;
    const bool optimize_each_step = opt_cp.optimize_each_step_;
    const double kappa_out = this->V_.P_v_m;
    const long isi_steps = t_spike - t_spike_previous;

    if ( not previous_was_flush_event )
    {
      remaining_steps_until_cutoff = this->get_eprop_isi_trace_cutoff();
      gradient = 0.0;
    }
    double z_current_buffer = previous_was_flush_event ? 0.0 : 1.0;

    const long t_begin = t_spike_previous - 1;
    auto hist = this->get_eprop_history( t_begin );
    const long t_steps = std::min( remaining_steps_until_cutoff, isi_steps );
    const long t_end = t_begin + t_steps;

    for ( long t = t_begin; t < t_end; ++t, ++hist )
    {
      this->require_eprop_history_entry( hist, t );
      const double z = z_previous_buffer;
      z_previous_buffer = z_current_buffer;
      z_current_buffer = 0.0;
      z_bar = kappa_out * z_bar + z;
      const double increment = hist->error_signal_ * z_bar;
      if ( optimize_each_step )
      {
        gradient = increment;
        weight = optimizer->optimized_weight( opt_cp, t + 1, gradient, weight );
      }
      else
      {
        gradient += increment;
      }
    }

    remaining_steps_until_cutoff -= t_steps;
    const long steps_after_cutoff = isi_steps - t_steps;
    decay_steps += steps_after_cutoff;
    if ( not is_flush_event and decay_steps > 0 )
    {
      z_bar *= std::pow( kappa_out, decay_steps );
      decay_steps = 0;
    }
    if ( not is_flush_event and not optimize_each_step )
    {
      weight = optimizer->optimized_weight( opt_cp, t_end + steps_after_cutoff, gradient, weight );
    }
  }
};

}  // namespace nest

#endif  // EPROP_NESTML_WRAPPERS_H
