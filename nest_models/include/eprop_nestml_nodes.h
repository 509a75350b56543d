/*
 *  eprop_nestml_nodes.h -- NEST parent classes of the NESTML e-prop neurons (eprop-plugins)
 *
 *  NESTML limitation worked around: NESTML 9 derives generated neurons from ArchivingNode (or a
 *  class named by the `neuron_parent_class` option) and cannot express NEST's e-prop machinery:
 *  the e-prop history (surrogate gradient, learning signal, firing-rate regulariser), learning-signal
 *  events, secondary (rate) events, or the e-prop hooks on Node (`get_shift`,
 *  `is_eprop_recurrent_node`, `compute_gradient`).  These parent classes supply the event side of
 *  that machinery; the per-step side lives in eprop_nestml_wrappers.h.
 *
 *  Written for nest-simulator 3.10 against the headers shipped in its wheel.  GPL-2.0-or-later.
 */

#ifndef EPROP_NESTML_NODES_H
#define EPROP_NESTML_NODES_H

#include "eprop_archiving_node_readout.h"
#include "eprop_archiving_node_recurrent.h"
// the recurrent node's template definitions; the wheel's _impl.h has no include guard, ours covers it
#include "eprop_archiving_node_recurrent_impl.h"
#include "event.h"
#include "exceptions.h"
#include "secondary_event.h"

namespace nest
{

/**
 * What the recurrent NESTML neurons of both families share: learning signals from the readouts are
 * written to the e-prop history; the node identifies itself as an e-prop recurrent neuron.
 * `hist_shift_required` is true for the original family (histories shifted by get_shift()).
 */
template < bool hist_shift_required >
class EpropNestmlRecurrentNodeBase : public EpropArchivingNodeRecurrent< hist_shift_required >
{
public:
  using Node::handle;
  using Node::handles_test_event;

  //! Learning signal from a readout: weight B_jk times the error signal, summed over readouts.
  void
  handle( LearningSignalConnectionEvent& e ) override
  {
    for ( auto it = e.begin(); it != e.end(); )
    {
      const long time_step = e.get_stamp().get_steps();
      const double weight = e.get_weight();
      const double error_signal = e.get_coeffvalue( it );  // advances the iterator
      this->write_learning_signal_to_history( time_step, weight * error_signal );
    }
  }

  size_t
  handles_test_event( LearningSignalConnectionEvent&, size_t receptor_type ) override
  {
    if ( receptor_type != 0 )
    {
      throw UnknownReceptorType( receptor_type, this->get_name() );
    }
    return 0;
  }

  //! Input -> recurrent: generator offset plus one step of delay (both families).
  long
  get_shift() const override
  {
    return this->offset_gen_ + this->delay_in_rec_;
  }

  bool
  is_eprop_recurrent_node() const override
  {
    return true;
  }

  //! Called by the generated emit_spike(); the wrapper does the e-prop side of a spike, seeing the state.
  void
  set_spiketime( Time const&, double = 0.0 )
  {
  }
};

/**
 * Recurrent neuron of the original family (NEST *_bsshslm_2020).  A concrete class, not an alias:
 * the generated code names its parent class when calling get_status/set_status.
 */
class EpropNestmlRecurrentOriginalNode : public EpropNestmlRecurrentNodeBase< true >
{
};

//! Recurrent neuron of the event family (NEST eprop_iaf*): unshifted history, ISI trace cutoff.
class EpropNestmlRecurrentEventNode : public EpropNestmlRecurrentNodeBase< false >
{
};

/**
 * Readout neuron of the original family: sends error signals (LearningSignalConnectionEvent) to the
 * recurrent neurons and, for the cross-entropy loss, its unnormalised signal to the other readouts
 * (DelayedRateConnectionEvent, receptor 1); receives the target on receptor 2.
 */
class EpropNestmlReadoutOriginalNode : public EpropArchivingNodeReadout< true >
{
public:
  using Node::handle;
  using Node::handles_test_event;
  using Node::sends_secondary_event;

  //! Rate receptors, as NEST's eprop_readout_bsshslm_2020.
  enum RateReceptors
  {
    READOUT_SIG = 1,
    TARGET_SIG = 2,
    SUP_RATE_RECEPTOR = 3
  };

  void
  sends_secondary_event( LearningSignalConnectionEvent& ) override
  {
  }

  void
  sends_secondary_event( DelayedRateConnectionEvent& ) override
  {
  }

  void
  handle( DelayedRateConnectionEvent& e ) override
  {
    const size_t rport = e.get_rport();
    auto it = e.begin();
    const double signal = e.get_weight() * e.get_coeffvalue( it );
    if ( rport == READOUT_SIG )
    {
      normalization_rate_in_ += signal;
    }
    else if ( rport == TARGET_SIG )
    {
      target_signal_in_ = signal;
    }
  }

  size_t
  handles_test_event( DelayedRateConnectionEvent&, size_t receptor_type ) override
  {
    if ( receptor_type < READOUT_SIG or receptor_type >= SUP_RATE_RECEPTOR )
    {
      throw UnknownReceptorType( receptor_type, get_name() );
    }
    return receptor_type;
  }

  //! Input -> recurrent -> readout: generator offset plus two steps of delay.
  long
  get_shift() const override
  {
    return offset_gen_ + delay_in_rec_ + delay_rec_out_;
  }

  bool
  is_eprop_recurrent_node() const override
  {
    return false;
  }

  void
  set_spiketime( Time const&, double = 0.0 )
  {
  }

protected:
  //! Target signal last received on receptor 2.
  double target_signal_in_ = 0.0;
  //! Sum of the other readouts' unnormalised signals received in this step (receptor 1).
  double normalization_rate_in_ = 0.0;
};

/**
 * Readout neuron of the event family (NEST eprop_readout): sends error signals to the recurrent
 * neurons; receives the learning-window signal on rate receptor 1 and the target on receptor 2.
 */
class EpropNestmlReadoutEventNode : public EpropArchivingNodeReadout< false >
{
public:
  using Node::handle;
  using Node::handles_test_event;
  using Node::sends_secondary_event;

  enum RateReceptors
  {
    LEARNING_WINDOW_SIG = 1,
    TARGET_SIG = 2,
    SUP_RATE_RECEPTOR = 3
  };

  void
  sends_secondary_event( LearningSignalConnectionEvent& ) override
  {
  }

  void
  sends_secondary_event( DelayedRateConnectionEvent& ) override
  {
  }

  void
  handle( DelayedRateConnectionEvent& e ) override
  {
    const size_t rport = e.get_rport();
    auto it = e.begin();
    const double signal = e.get_weight() * e.get_coeffvalue( it );
    if ( rport == LEARNING_WINDOW_SIG )
    {
      learning_window_signal_in_ = signal;
    }
    else if ( rport == TARGET_SIG )
    {
      target_signal_in_ = signal;
    }
  }

  size_t
  handles_test_event( DelayedRateConnectionEvent&, size_t receptor_type ) override
  {
    if ( receptor_type < LEARNING_WINDOW_SIG or receptor_type >= SUP_RATE_RECEPTOR )
    {
      throw UnknownReceptorType( receptor_type, get_name() );
    }
    return receptor_type;
  }

  long
  get_shift() const override
  {
    return offset_gen_ + delay_in_rec_;
  }

  bool
  is_eprop_recurrent_node() const override
  {
    return false;
  }

  void
  set_spiketime( Time const&, double = 0.0 )
  {
  }

protected:
  //! Target signal last received on receptor 2 (times the learning window after each step, as NEST).
  double target_signal_in_ = 0.0;
  //! Learning-window signal last received on receptor 1.
  double learning_window_signal_in_ = 0.0;
};

}  // namespace nest

#endif  // EPROP_NESTML_NODES_H
